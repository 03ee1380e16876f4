"""Layer machinery shared by expected gradients, the shap bridge and the metrics.

A "layer" is a submodule of the model; its **output** (or **input**) is the
tensor that is captured or attributed. Everything here registers its hooks
through :class:`~interp_helpers.hooks.OwnedHooks`, so exactly those hooks are
removed when a call ends -- normally or by an exception raised anywhere inside
the model -- and hooks registered by others are never touched.

* :func:`check_layer` -- validate a ``layer`` argument (a submodule of the model, or None).
* :func:`capture` -- the layer's activation for a batch, in chunks, optionally
  skipping the part of the network after the layer; refuses layers called more
  or less than once per forward pass.
* :func:`rest_of_network` -- ``z -> logits`` with ``z`` put in place of the layer's
  output (or input): the part of the network from the layer on.
* :func:`check_separates` -- refuse a layer that the whole signal does not pass
  through (a skip connection around it).
* :func:`layer_activations` -- the public, validated form of :func:`capture`.

The low-level functions (:func:`capture`, :func:`rest_of_network`,
:func:`check_separates`) take an already validated, frozen module
(:func:`~interp_helpers.hooks.frozen_model`) and tensors on its device.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from ..hooks import OwnedHooks, frozen_model
from ..memory import memory_batch_size
from ..validation import as_module, check_choice, check_positive_int
from . import core

__all__ = [
    "WHERE",
    "Captured",
    "capture",
    "check_layer",
    "check_separates",
    "layer_activations",
    "rest_of_network",
]

#: Which tensor of a layer is captured or attributed: its output or its (single) input.
WHERE = ("output", "input")


class _StopForward(Exception):
    """Raised by a capture hook to skip the part of the network after the layer."""


def check_layer(layer: Any, model: Any, *, where: Any = "output", name: str = "attribute_to",
                required: bool = False) -> nn.Module | None:
    """``layer`` checked to be a submodule of ``model`` (``None`` allowed unless ``required``).

    Also checks ``where`` (``"output"`` or ``"input"``, reported as ``name``). Raises
    ``TypeError`` for a layer that is not an ``nn.Module`` (or None when ``required``),
    ``ValueError`` for a module that is not inside ``model`` or a bad ``where``.
    """
    check_choice(where, name, WHERE)
    module = as_module(model)
    if layer is None:
        if required:
            raise TypeError("layer must be a torch.nn.Module inside model, got None")
        return None
    if not isinstance(layer, nn.Module):
        what = "a torch.nn.Module inside model" + ("" if required else " or None")
        raise TypeError(f"layer must be {what}, got {type(layer).__name__}")
    if not any(m is layer for m in module.modules()):
        raise ValueError(f"layer must be a submodule of model, got a {type(layer).__name__} that is not in it")
    return layer


def _single_tensor(value: Any, where: str) -> torch.Tensor:
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"layer {where} must be a single tensor to be captured, got {type(value).__name__}")
    return value


class Captured(NamedTuple):
    """What :func:`capture` returns.

    activations: the layer's output (or input) for every row, ``(N, *shape)``, detached.
    output: the model's output ``(N, ...)`` for the same rows, or None when the
        network after the layer was skipped (``stop=True``).
    """

    activations: torch.Tensor
    output: torch.Tensor | None


def _capture_chunk(module: nn.Module, layer: nn.Module, x: torch.Tensor, where: str,
                   stop: bool) -> tuple[torch.Tensor, Any]:
    seen: list[torch.Tensor] = []

    def grab(value: Any) -> None:
        seen.append(_single_tensor(value, where).detach())
        if stop:
            raise _StopForward

    output = None
    with OwnedHooks() as hooks, torch.no_grad():
        if where == "output":
            hooks.forward(layer, lambda _m, _args, out: grab(out))
        else:
            hooks.forward_pre(layer, lambda _m, args: grab(args))
        try:
            output = module(x)
        except _StopForward:
            pass
    if len(seen) != 1:
        raise ValueError(
            f"layer must be called exactly once per forward pass to be captured or attributed, "
            f"this {type(layer).__name__} was called {len(seen)} times"
        )
    if not stop and (not isinstance(output, torch.Tensor) or output.dim() < 1 or output.shape[0] != x.shape[0]):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"model must map a batch of {x.shape[0]} images to one output row per image, "
            f"such as (N, K) logits; it returned {shape}"
        )
    return seen[0], output


def capture(module: nn.Module, layer: nn.Module, x: torch.Tensor, where: str = "output", *,
            batch_size: int | None = None, stop: bool = False) -> Captured:
    """The output (or input) of ``layer`` when ``module`` runs on ``x``, ``batch_size`` rows at a time.

    Forward passes only (no autograd). With ``stop``, a hook interrupts each pass
    right after the layer, so the network after it is not run and
    :attr:`Captured.output` is None; without it the model's outputs are returned
    too. ``module`` must be frozen (:func:`~interp_helpers.hooks.frozen_model`) and
    ``x`` on its device; ``batch_size=None`` runs all rows at once.

    Raises ``ValueError`` if the layer is not called exactly once per pass (with
    ``stop``, only a layer never called is detected), if the captured value is
    not a single tensor, or (without ``stop``) if the model does not return one row per image.
    """
    where = check_choice(where, "where", WHERE)
    rows = x.shape[0]
    step = rows if batch_size is None else batch_size
    parts = [_capture_chunk(module, layer, x[s:s + step], where, stop) for s in range(0, rows, max(step, 1))]
    acts = parts[0][0] if len(parts) == 1 else torch.cat([a for a, _ in parts])
    if stop:
        return Captured(acts, None)
    out = parts[0][1] if len(parts) == 1 else torch.cat([o for _, o in parts])
    return Captured(acts, out)


def rest_of_network(module: nn.Module, layer: nn.Module, where: str,
                    dummy: torch.Tensor) -> Callable[[torch.Tensor], Any]:
    """``z -> module's output`` with ``z`` (a batch) put in place of the layer's output (or input).

    Each call runs ``module`` on ``dummy`` (one image: the part before the layer
    costs one image's worth) while an owned hook swaps in ``z``, so everything
    after the layer runs on ``z``'s batch; the hook is removed when the call ends,
    also by an exception. ``z`` is cloned so that an in-place operation
    downstream never modifies the caller's tensor. Autograd flows from the output
    to ``z``. The result is only the network from the layer on if the layer
    separates the network: check that with :func:`check_separates`.
    """
    where = check_choice(where, "where", WHERE)

    def run(z: torch.Tensor) -> Any:
        with OwnedHooks() as hooks:
            if where == "output":
                hooks.forward(layer, lambda _m, _args, _out: z.clone())
            else:
                hooks.forward_pre(layer, lambda _m, _args: (z.clone(),))
            return module(dummy)

    return run


def check_separates(rest: Callable[[torch.Tensor], Any], activations: torch.Tensor, logits: torch.Tensor,
                    layer: nn.Module, batch_size: int) -> None:
    """Refuse ``layer`` if the rest of the network, fed the true activations, misses the true logits.

    ``rest`` is :func:`rest_of_network`; ``activations`` and ``logits`` come from one
    :func:`capture` of the same rows. A layer bypassed by a skip connection fails:
    the bypass carries the dummy image's values. Raises ``ValueError`` saying so.
    """
    try:
        with torch.no_grad():
            again = torch.cat([rest(activations[s:s + batch_size])
                               for s in range(0, activations.shape[0], batch_size)])
    except RuntimeError as exc:
        raise ValueError(
            f"layer ({type(layer).__name__}) does not separate the network: running the rest of the "
            f"network from its activations failed ({exc})"
        ) from exc
    scale = float(logits.abs().max()) + 1e-12
    if again.shape != logits.shape or not torch.allclose(again, logits, rtol=1e-3, atol=1e-4 * scale):
        raise ValueError(
            f"layer ({type(layer).__name__}) does not separate the network: the logits also depend on "
            "tensors computed before the layer that bypass it (a skip connection around it?), so "
            "attributions to this layer alone cannot be complete; pick a module the whole signal passes through"
        )


def layer_activations(model: Any, inputs: torch.Tensor, layer: Any, *,
                      batch_size: int | None = None) -> torch.Tensor:
    """The output of ``layer`` (a submodule of ``model``) for ``inputs``: ``(N, *activation shape)``.

    Runs ``model`` on ``inputs`` without gradients, ``batch_size`` images at a
    time, and records the layer's output with an owned forward hook. The model
    runs where it is (its first parameter's device) and is left exactly as found
    (training flags, gradients, hooks), also on error; the activations are
    returned on ``inputs``' device.

    Args:
        model: a ``torch.nn.Module`` or what ``load_model`` returns.
        inputs: a finite floating tensor ``(N, C, H, W)``.
        layer: a submodule of ``model``, called exactly once per forward pass, returning one tensor.
        batch_size: images per forward pass; default: as many as fit
            :data:`~interp_helpers.memory.PASS_BUDGET_BYTES` on this model
            (:func:`~interp_helpers.memory.memory_batch_size`, at most N) -- a
            conservative bound, since a forward pass without gradients keeps less.

    Raises:
        TypeError / ValueError: naming the argument (a model that is not a module,
        bad inputs, a layer that is not a module inside ``model`` or is not called
        exactly once, a bad ``batch_size``).
    """
    prep = core.prepare(model, inputs, None, allow_none=True)  # the one device policy; no class to explain
    layer = check_layer(layer, prep.module, required=True)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    x = prep.inputs
    with frozen_model(prep.module) as m:
        if batch_size is None:
            batch_size = memory_batch_size(m, x, cap=x.shape[0])
        acts = capture(m, layer, x, "output", batch_size=batch_size).activations
    return prep.to_home(acts)
