"""Running shap's ``GradientExplainer`` on a PyTorch model cleanly, and handing its output to plots.

shap's ``GradientExplainer`` (Lundberg & Lee 2017, "A unified approach to
interpreting model predictions"; the estimator is expected gradients, Erion et
al. 2021) has side effects this project avoids: it calls ``model.eval()`` and
``model.zero_grad()`` (dropping existing ``.grad``), and ``shap_values``
reseeds NumPy's *global* RNG (``np.random.seed(rseed)``). It also returns
NumPy arrays laid out ``(N, *shape, K)``. :func:`shap_gradient_explainer`
runs it with the model left exactly as found (every hook shap registers is
owned by :class:`~interp_helpers.hooks.OwnedHooks`, so none is left behind even
when shap raises) and the global RNG restored, and returns tensors
``(N, K, *shape)``; :func:`image_plot_values` turns those into what
``shap.image_plot`` expects. Given a ``target``, it explains that target instead
of the top classes and returns ``(N, *shape)``, the package protocol's shape
(:mod:`interp_helpers.attribution.core`).

Semantics of the ``layer`` form, ``GradientExplainer((model, layer), data)``:
the attributions are for the layer's **input** (``(m, m.layer2)`` explains the
tensor ``layer1`` produced), the path is interpolated in *input* space, and
each sample's gradient is multiplied by the layer input at the interpolated
point, not by a difference from a baseline -- so the attributions do not sum
to ``f(x) - E[f(x')]`` (shap's tests skip that check for layers). See
:func:`interp_helpers.attribution.expected_gradients.expected_gradients` for layer attributions that do.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..hooks import OwnedHooks, frozen_model
from ..memory import memory_batch_size
from ..validation import check_logits, check_number, check_positive_int, check_seed
from .core import DEFAULT_SEED, Target, Targets, prepare
from .expected_gradients import DEFAULT_BATCH_SIZE, check_background
from .layers import check_layer

__all__ = ["image_plot_values", "shap_gradient_explainer"]


class _OwnedLayer:
    """The layer as shap sees it: shap's hook registrations go through :class:`OwnedHooks`.

    shap's ``(model, layer)`` form registers a forward hook on the layer and removes it
    only when ``shap_values`` finishes; if shap raises in between, the hook would stay.
    Registered through this proxy, the hook is owned and removed when the call ends.
    Every other attribute (shap's ``target_input``) is the layer's own.
    """

    def __init__(self, layer: nn.Module, hooks: OwnedHooks) -> None:
        object.__setattr__(self, "_layer", layer)
        object.__setattr__(self, "_hooks", hooks)

    def register_forward_hook(self, hook: Callable[..., Any], **kwargs: Any) -> Any:
        return self._hooks.forward(self._layer, hook, **kwargs)

    def register_forward_pre_hook(self, hook: Callable[..., Any], **kwargs: Any) -> Any:
        return self._hooks.forward_pre(self._layer, hook, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._layer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._layer, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._layer, name)


class _TargetScore(nn.Module):
    """shap's model when a target is given: a single output, the target's score ``(B, 1)``."""

    def __init__(self, module: nn.Module, score: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.score = score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.module(x)).unsqueeze(1)


def _class_score(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(logits: torch.Tensor) -> torch.Tensor:
        rows = logits.shape[0] if isinstance(logits, torch.Tensor) and logits.dim() > 0 else -1
        return check_logits(logits, rows, max_target=index)[:, index]
    return score


def _callable_score(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(logits: torch.Tensor) -> torch.Tensor:
        rows = logits.shape[0] if isinstance(logits, torch.Tensor) and logits.dim() > 0 else -1
        return Targets(None, fn, rows).scores(logits)
    return score


def _groups(targets: Targets) -> list[tuple[list[int], Callable[[torch.Tensor], torch.Tensor]]]:
    """``(rows, score)`` per shap call: every image for a callable, else the images of each class."""
    if targets.indices is None:
        return [(list(range(targets.n)), _callable_score(targets.fn))]
    rows: dict[int, list[int]] = {}
    for i, c in enumerate(targets.indices.tolist()):
        rows.setdefault(int(c), []).append(i)
    return [(r, _class_score(c)) for c, r in rows.items()]


def shap_gradient_explainer(
    model: Any,
    inputs: torch.Tensor,
    target: Target | None = None,
    *,
    background: torch.Tensor,
    layer: nn.Module | None = None,
    nsamples: int = 200,
    ranked_outputs: int = 1,
    local_smoothing: float = 0.0,
    batch_size: int | None = None,
    seed: int | None = DEFAULT_SEED,
) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
    """shap's ``GradientExplainer`` for the top ``ranked_outputs`` classes of each image, or for ``target``.

    * ``target=None``: shap's ``ranked_outputs`` form -- each image's top
      ``ranked_outputs`` classes by logit (``output_rank_order="max"``); returns
      ``(values, classes)``.
    * ``target`` given (one class index for all images, one per image, or a score
      callable ``score(logits) -> (B,)``, see :mod:`interp_helpers.attribution.core`):
      shap has no target argument, so shap explains a wrapper model whose single
      output is the target's score (the class's logit, or ``score(logits)``). The
      images of each target class are explained together by one ``shap_values`` call
      (one call with every image for a callable), in their order in ``inputs``, on one
      explainer built once. shap's draws for an image depend on ``seed`` and on its
      position within its call, so for a class ``c`` that is the top class of every
      image this gives exactly the numbers of ``target=None`` (and of raw shap).
      Returns the attributions ``(N, *shape)`` only -- the package protocol's shape, so
      ``functools.partial(shap_gradient_explainer, background=bg)`` is a method that
      :func:`~interp_helpers.attribution.noise.noise_tunnel` and the metrics accept.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns); left as found.
        inputs: images ``(N, C, H, W)``; moved to the model's device (its first parameter's).
        target: ``None`` (top classes), class indices or a score callable (see above).
        background: shap's ``data``, ``(M, C, H, W)``.
        layer: ``None`` (attributions for the input) or a submodule: shap's
            ``(model, layer)`` form, which attributes the layer's **input**.
        nsamples: shap's ``nsamples``, draws per image and class.
        ranked_outputs: with ``target=None``, explain the top-k classes of each image
            (shap's ``ranked_outputs``); checked, but unused when a target is given.
        local_smoothing: shap's ``local_smoothing``: the standard deviation of
            Gaussian noise added to the *explained* image at every draw
            (SmoothGrad-style), in input units.
        batch_size: shap's ``batch_size`` (draws per forward/backward pass). Default ``None``:
            shap's 50 (:data:`~interp_helpers.attribution.expected_gradients.DEFAULT_BATCH_SIZE`),
            fewer where a pass would not fit the memory budget
            (:func:`~interp_helpers.memory.memory_batch_size`).
        seed: shap's ``rseed`` and the seed of its ``local_smoothing`` noise (default 0); the
            global NumPy and torch RNG states are restored afterwards.
            ``None`` draws one from OS entropy.

    Returns:
        ``target=None``: ``(values, classes)``, float32 attributions ``(N, K, *shape)`` on ``inputs``'
        device (``shape`` = the input's or the layer input's) and class indices ``(N, K)``, K = ``ranked_outputs``.
        ``target`` given: the attributions ``(N, *shape)`` on ``inputs``' device and in their dtype.

    Raises:
        TypeError / ValueError: naming the argument (bad inputs, background, target, layer, counts).
    """
    import shap

    prep = prepare(model, inputs, target, allow_none=True)  # the one device policy; target None: ranked outputs
    module, x, device = prep.module, prep.inputs, prep.device
    background = check_background(background, x)
    layer = check_layer(layer, module)  # shap's (model, layer) form explains the layer's input
    nsamples = check_positive_int(nsamples, "nsamples")
    ranked_outputs = check_positive_int(ranked_outputs, "ranked_outputs")
    local_smoothing = check_number(local_smoothing, "local_smoothing", low=0.0)
    if batch_size is None:
        batch_size = memory_batch_size(module, x, cap=DEFAULT_BATCH_SIZE)
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed) % (2**32 - 1)  # np.random.seed accepts 0 .. 2**32 - 1
    xb = background.detach().to(device)

    # shap seeds NumPy's global RNG (rseed) and draws local_smoothing noise from torch's global RNG:
    # both are seeded here from ``seed`` and restored afterwards, so the call is reproducible and
    # leaves the caller's random state as it was.
    state = np.random.get_state()
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), frozen_model(module) as m, OwnedHooks() as hooks:
            torch.manual_seed(seed)
            if prep.targets is None:
                spec = m if layer is None else (m, _OwnedLayer(layer, hooks))
                explainer = shap.GradientExplainer(spec, xb, batch_size=batch_size, local_smoothing=local_smoothing)
                values, classes = explainer.shap_values(x, nsamples=nsamples, ranked_outputs=ranked_outputs,
                                                        rseed=seed)
            else:
                groups = _groups(prep.targets)
                wrapper = _TargetScore(m, groups[0][1])
                spec = wrapper if layer is None else (wrapper, _OwnedLayer(layer, hooks))
                explainer = shap.GradientExplainer(spec, xb, batch_size=batch_size, local_smoothing=local_smoothing)
                out: np.ndarray | None = None
                for rows, score in groups:
                    wrapper.score = score
                    part = _single_output(explainer.shap_values(x[rows], nsamples=nsamples, rseed=seed))
                    if out is None:
                        out = np.zeros((x.shape[0], *part.shape[1:]), dtype=part.dtype)
                    out[rows] = part
    finally:
        np.random.set_state(state)
        if layer is not None and hasattr(layer, "target_input"):
            del layer.target_input  # shap's capture attribute, normally deleted by shap itself
    if prep.targets is not None:
        return prep.to_home(torch.from_numpy(out))
    values = torch.from_numpy(np.asarray(values, dtype=np.float32))
    values = values.permute(0, values.dim() - 1, *range(1, values.dim() - 1)).contiguous()  # (N, K, *shape)
    classes = torch.as_tensor(np.asarray(classes), dtype=torch.long).reshape(values.shape[0], -1)
    return values.to(prep.home), classes.to(prep.home)


def _single_output(raw: Any) -> np.ndarray:
    """shap's values for a one-output model as ``(N, *shape)``, whatever the shap version's layout.

    shap returns a list with one array per output (older versions) or an array with a
    trailing output axis of length 1 (newer ones, as 0.51 here); image and layer tensors
    never end in a length-1 axis themselves (their width is >= 2).
    """
    if isinstance(raw, list):
        raw = raw[0]
    part = np.asarray(raw)
    return part[..., 0] if part.ndim >= 3 and part.shape[-1] == 1 else part


def image_plot_values(values: torch.Tensor) -> list[np.ndarray]:
    """``(N, K, C, H, W)`` attributions -> ``shap.image_plot``'s list of K arrays ``(N, H, W, C)``."""
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor (N, K, C, H, W), got {type(values).__name__}")
    if values.dim() != 5:
        raise ValueError(f"values must be (N, K, C, H, W), got shape {tuple(values.shape)}")
    v = values.detach().cpu().numpy()
    return [np.ascontiguousarray(v[:, k].transpose(0, 2, 3, 1)) for k in range(v.shape[1])]
