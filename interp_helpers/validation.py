"""Argument checks and model-state bookkeeping shared by every public function.

Two conventions hold across the package:

* public functions validate their arguments at the boundary and raise
  ``ValueError``/``TypeError`` whose message names the argument and the value;
* a helper leaves a model exactly as it found it -- train/eval mode of every
  submodule, each parameter's ``requires_grad`` and ``.grad``, and its hooks --
  also when it raises (see :func:`frozen_model`).
"""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "as_module",
    "check_positive_int",
    "check_inputs",
    "check_logits",
    "check_targets",
    "frozen_model",
    "model_fingerprint",
]


def as_module(model: Any, name: str = "model") -> nn.Module:
    """Return the ``nn.Module`` behind ``model`` (a module or a :class:`LoadedModel`)."""
    module = getattr(model, "module", model)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module or what load_model returns, "
            f"got {type(model).__name__}"
        )
    return module


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_inputs(inputs: Any, name: str = "inputs") -> torch.Tensor:
    """Check that ``inputs`` is a finite floating 4-D tensor ``(N, C, H, W)`` with N >= 1."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(inputs).__name__}")
    if inputs.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(inputs.shape)}")
    if inputs.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {inputs.dtype}")
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return inputs


def check_targets(target: Any, n: int, num_classes: int | None, name: str = "target") -> torch.Tensor:
    """Turn an int or a sequence/tensor of ``n`` class indices into a long tensor of shape (n,).

    ``num_classes`` (if known) bounds the indices: ``0 <= target < num_classes``.
    """
    if isinstance(target, bool):
        raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}")
    if isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach().cpu()
        elif isinstance(target, Sequence) or hasattr(target, "__array__"):
            try:
                t = torch.as_tensor(list(target) if isinstance(target, Sequence) else target)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}") from exc
        else:
            raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}")
        if t.dim() == 0:
            t = t.reshape(1).expand(n)
        if t.dim() != 1 or t.numel() != n:
            raise ValueError(f"{name} must hold one class index per input ({n}), got shape {tuple(t.shape)}")
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"{name} must hold integer class indices, got dtype {t.dtype}")
        t = t.to(torch.long)
    if (t < 0).any() or (num_classes is not None and (t >= num_classes).any()):
        raise ValueError(f"{name} out of range [0, {num_classes}): {t.tolist()}")
    return t


def check_logits(logits: Any, batch: int, targets: torch.Tensor | None = None, *,
                 max_target: int | None = None) -> torch.Tensor:
    """Check a model's output for a batch of ``batch`` images: a tensor ``(batch, K)`` of logits.

    With ``targets`` (or their largest value, ``max_target``, which spares a device-to-host
    synchronisation), also check that every target is a valid class index ``< K``.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must map a batch of {batch} images to (N, K) logits, it returned {shape}")
    if targets is not None or max_target is not None:
        top = int(targets.max()) if max_target is None else max_target
        if top >= logits.shape[1]:
            bad = sorted({int(t) for t in targets if int(t) >= logits.shape[1]}) if targets is not None else [top]
            raise ValueError(f"target out of range [0, {logits.shape[1]}) of the model's logits: {bad}")
    return logits


def _hook_dicts(module: nn.Module) -> list[dict]:
    names = [
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
    ]
    return [getattr(module, n) for n in names if hasattr(module, n)]


def model_fingerprint(model: Any) -> dict[str, Any]:
    """A snapshot of everything a helper must leave unchanged; compare two with ``==``.

    Covers each submodule's training flag and hook ids, each parameter's
    ``requires_grad``, the identity and checksum of its ``.grad``, and the parameter values' checksums.
    """
    module = as_module(model)
    return {
        "training": [(n, m.training) for n, m in module.named_modules()],
        "hooks": [(n, [sorted(d.keys()) for d in _hook_dicts(m)]) for n, m in module.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in module.named_parameters()],
        "grad": [(n, None if p.grad is None else (id(p.grad), float(p.grad.detach().double().sum())))
                 for n, p in module.named_parameters()],
        "values": [(n, float(p.detach().double().sum())) for n, p in module.named_parameters()],
    }


@contextlib.contextmanager
def frozen_model(model: Any, *, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Run a block with the model in eval mode and its parameters frozen; restore everything after.

    Inside the block every parameter has ``requires_grad=False`` (so backward
    passes compute input gradients only) and, with ``eval_mode``, every
    submodule is in eval mode. On exit -- normal or by exception, including
    ``KeyboardInterrupt`` -- each submodule's training flag, each parameter's
    ``requires_grad`` and ``.grad`` are restored, and hooks registered inside the
    block that are still attached are removed. Exceptions propagate.
    """
    module = as_module(model)
    modes = [(m, m.training) for m in module.modules()]
    params = [(p, p.requires_grad, p.grad) for p in module.parameters()]
    hook_keys = [(d, set(d.keys())) for m in module.modules() for d in _hook_dicts(m)]
    try:
        for p, _, _ in params:
            p.requires_grad_(False)
        if eval_mode:
            module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad
        for d, keys in hook_keys:
            for k in [k for k in d.keys() if k not in keys]:
                del d[k]
