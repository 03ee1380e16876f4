"""Gradient saliency and gradient x input: the base methods that SmoothGrad smooths.

* :func:`gradient` -- the vanilla gradient of the target's score with respect to the
  input pixels (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
  Networks: Visualising Image Classification Models and Saliency Maps";
  Baehrens et al. 2010, "How to Explain Individual Classification Decisions").
* :func:`gradient_x_input` -- the gradient multiplied element-wise by the input
  (Shrikumar et al. 2016, "Not Just a Black Box: Learning Important Features
  Through Propagating Activation Differences").

Both follow the package protocol ``method(model, inputs, target, *, ...)``
(:mod:`interp_helpers.attribution.core`), compute every row independently (so
:func:`~interp_helpers.attribution.noise.noise_tunnel` batches their noisy copies
across samples), leave the model exactly as found and compute no parameter gradients.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..hooks import frozen_model
from .core import Target, Targets, prepare, resolve_batch_size, rowwise, run_rows

__all__ = ["gradient", "gradient_x_input", "input_gradient"]


def input_gradient(module: nn.Module, batch: torch.Tensor, targets: Targets) -> torch.Tensor:
    """d score / d batch for every row of ``batch`` in one backward pass (the gradient kernel).

    Rows are independent because the model is in eval mode, so the gradient of the
    summed scores is, row by row, each row's own gradient. ``module`` must be frozen.
    """
    x = batch.detach().requires_grad_(True)
    with torch.enable_grad():
        score = targets.scores(module(x)).sum()
        if not score.requires_grad:  # a score that does not depend on the input (e.g. a constant callable)
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(score, x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def _input_times_gradient(module: nn.Module, batch: torch.Tensor, targets: Targets) -> torch.Tensor:
    return input_gradient(module, batch, targets).mul_(batch)


@rowwise(input_gradient)
def gradient(model: Any, inputs: torch.Tensor, target: Target, *, batch_size: int | None = None) -> torch.Tensor:
    """Vanilla gradient saliency: d score(target) / d inputs (Simonyan et al. 2014).

    This is SmoothGrad's n = 0 baseline: the map it smooths.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns) mapping
            ``(N, C, H, W)`` inputs to ``(N, K)`` logits.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``, N >= 1.
        target: one class index for all images, one index per image, or a callable
            ``score(logits) -> (B,)`` (see :mod:`interp_helpers.attribution.core`).
        batch_size: images per forward/backward pass (default:
            :func:`~interp_helpers.attribution.core.default_batch_size`, lowered to what
            fits :data:`~interp_helpers.memory.PASS_BUDGET_BYTES` on this model).

    Returns:
        A detached tensor of the shape, dtype and device of ``inputs`` (computed on the model's device).

    Raises:
        ValueError: on bad ``inputs``, ``target`` or ``batch_size`` (the message names it).
    """
    prep = prepare(model, inputs, target)
    bs = resolve_batch_size(batch_size, prep.module, prep.inputs, prep.inputs.shape[0])
    with frozen_model(prep.module) as m:
        return prep.to_home(run_rows(input_gradient, m, prep.inputs, prep.targets, bs))


@rowwise(_input_times_gradient)
def gradient_x_input(model: Any, inputs: torch.Tensor, target: Target, *,
                     batch_size: int | None = None) -> torch.Tensor:
    """Gradient times input, element-wise (Shrikumar et al. 2016).

    Same arguments and result as :func:`gradient`. The result depends on the
    preprocessing: a pixel whose normalised value is 0 gets 0 attribution.
    """
    prep = prepare(model, inputs, target)
    bs = resolve_batch_size(batch_size, prep.module, prep.inputs, prep.inputs.shape[0])
    with frozen_model(prep.module) as m:
        return prep.to_home(run_rows(_input_times_gradient, m, prep.inputs, prep.targets, bs))
