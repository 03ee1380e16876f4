"""Running shap's ``GradientExplainer`` on a PyTorch model cleanly, and handing its output to plots.

shap's ``GradientExplainer`` (Lundberg & Lee 2017, "A unified approach to
interpreting model predictions"; the estimator is expected gradients, Erion et
al. 2021) has side effects this project avoids: it calls ``model.eval()`` and
``model.zero_grad()`` (dropping existing ``.grad``), and ``shap_values``
reseeds NumPy's *global* RNG (``np.random.seed(rseed)``). It also returns
NumPy arrays laid out ``(N, *shape, K)``. :func:`shap_gradient_explainer`
runs it with the model left exactly as found and the global RNG restored, and
returns tensors ``(N, K, *shape)``; :func:`image_plot_values` turns those into
what ``shap.image_plot`` expects.

Semantics of the ``layer`` form, ``GradientExplainer((model, layer), data)``:
the attributions are for the layer's **input** (``(m, m.layer2)`` explains the
tensor ``layer1`` produced), the path is interpolated in *input* space, and
each sample's gradient is multiplied by the layer input at the interpolated
point, not by a difference from a baseline -- so the attributions do not sum
to ``f(x) - E[f(x')]`` (shap's tests skip that check for layers). See
:func:`interp_helpers.attribution.expected_gradients.expected_gradients` for layer attributions that do.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import _rng
from ..validation import as_module, check_inputs, check_positive_int, check_seed
from ..hooks import frozen_model
from .expected_gradients import DEFAULT_BATCH_SIZE, _check_background, _check_layer
from ..memory import memory_batch_size

__all__ = ["image_plot_values", "shap_gradient_explainer"]


def shap_gradient_explainer(
    model: Any,
    inputs: torch.Tensor,
    background: torch.Tensor,
    *,
    layer: nn.Module | None = None,
    nsamples: int = 200,
    ranked_outputs: int = 1,
    local_smoothing: float = 0.0,
    batch_size: int | None = None,
    seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """shap's ``GradientExplainer`` for the top ``ranked_outputs`` classes of each image.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns); left as found.
        inputs: images ``(N, C, H, W)`` on the model's device.
        background: shap's ``data``, ``(M, C, H, W)``.
        layer: ``None`` (attributions for the input) or a submodule: shap's
            ``(model, layer)`` form, which attributes the layer's **input**.
        nsamples: shap's ``nsamples``, draws per image and class.
        ranked_outputs: explain the top-k classes of each image (shap's
            ``ranked_outputs``, ordered by logit, ``output_rank_order="max"``).
        local_smoothing: shap's ``local_smoothing``: the standard deviation of
            Gaussian noise added to the *explained* image at every draw
            (SmoothGrad-style), in input units.
        batch_size: shap's ``batch_size`` (draws per forward/backward pass). Default ``None``:
            shap's 50 (:data:`~interp_helpers.attribution.expected_gradients.DEFAULT_BATCH_SIZE`), fewer where a pass would not fit the memory budget
            (:func:`~interp_helpers.memory.memory_batch_size`).
        seed: shap's ``rseed`` and the seed of its ``local_smoothing`` noise; the global
            NumPy and torch RNG states are restored afterwards.
            ``None`` draws one from OS entropy.

    Returns:
        ``(values, classes)``: float32 attributions ``(N, K, *shape)`` on the CPU
        (``shape`` = the input's or the layer input's) and class indices ``(N, K)``.
    """
    import shap

    module = as_module(model)
    inputs = check_inputs(inputs)
    background = _check_background(background, inputs)
    layer = _check_layer(layer, module, "input")  # shap's (model, layer) form explains the layer's input
    nsamples = check_positive_int(nsamples, "nsamples")
    ranked_outputs = check_positive_int(ranked_outputs, "ranked_outputs")
    if batch_size is None:
        batch_size = memory_batch_size(module, inputs, cap=DEFAULT_BATCH_SIZE)
    batch_size = check_positive_int(batch_size, "batch_size")
    if (isinstance(local_smoothing, bool) or not isinstance(local_smoothing, numbers.Real)
            or not np.isfinite(local_smoothing) or local_smoothing < 0):
        raise ValueError(f"local_smoothing must be a finite number >= 0, got {local_smoothing!r}")
    seed = check_seed(seed) % (2**32 - 1)  # np.random.seed accepts 0 .. 2**32 - 1

    # shap seeds NumPy's global RNG (rseed) and draws local_smoothing noise from torch's global RNG:
    # both are seeded here from ``seed`` and restored afterwards, so the call is reproducible and
    # leaves the caller's random state as it was.
    state = np.random.get_state()
    devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), frozen_model(module) as m:
            torch.manual_seed(seed)
            spec = m if layer is None else (m, layer)
            explainer = shap.GradientExplainer(spec, background.detach(), batch_size=batch_size,
                                               local_smoothing=float(local_smoothing))
            values, classes = explainer.shap_values(inputs.detach(), nsamples=nsamples,
                                                    ranked_outputs=ranked_outputs, rseed=seed)
    finally:
        np.random.set_state(state)
        if layer is not None and hasattr(layer, "target_input"):
            del layer.target_input  # shap's capture attribute, normally deleted by shap itself
    values = torch.from_numpy(np.asarray(values, dtype=np.float32))
    values = values.permute(0, values.dim() - 1, *range(1, values.dim() - 1)).contiguous()  # (N, K, *shape)
    return values, torch.as_tensor(np.asarray(classes), dtype=torch.long).reshape(values.shape[0], -1)


def image_plot_values(values: torch.Tensor) -> list[np.ndarray]:
    """``(N, K, C, H, W)`` attributions -> ``shap.image_plot``'s list of K arrays ``(N, H, W, C)``."""
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor (N, K, C, H, W), got {type(values).__name__}")
    if values.dim() != 5:
        raise ValueError(f"values must be (N, K, C, H, W), got shape {tuple(values.shape)}")
    v = values.detach().cpu().numpy()
    return [np.ascontiguousarray(v[:, k].transpose(0, 2, 3, 1)) for k in range(v.shape[1])]
