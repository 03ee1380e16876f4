"""Map primitives: channel reduction, resampling and rank correlation of attribution maps.

Channel reduction (``REDUCTIONS``), the one rule: a function that ranks or shows magnitudes reduces ``(C, H, W)``
by ``"abs_sum"``, ``sum_c |a_c|`` (Smilkov et al. 2017 and Adebayo et al. 2018 sum absolute values); one that
keeps the sign (``show_diverging``, ``layer_map``) by ``"sum"``, for additive attributions the attribution of
the location. ``"max_abs"``, ``max_c |a_c|``, is Simonyan et al. (2014)'s.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from ._common import as_tensor, check_choice, check_size

REDUCTIONS = ("abs_sum", "sum", "max_abs")


def reduce_channels(attribution: Any, reduction: str = "abs_sum") -> Any:
    """Collapse the channel axis of ``(..., C, H, W)`` maps to ``(..., H, W)``; a tensor or an array, as given."""
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    a = as_tensor(attribution, "attribution")
    if a.dim() < 3:
        raise ValueError(f"attribution must have shape (..., C, H, W), got {tuple(a.shape)}")
    out = a.sum(-3) if reduction == "sum" else a.abs().sum(-3) if reduction == "abs_sum" else a.abs().amax(-3)
    return out.numpy() if isinstance(attribution, np.ndarray) else out


def _resample(saliency: Any, size: Any, pool: bool) -> Any:
    t = as_tensor(saliency, "saliency").to(device="cpu", dtype=torch.float64)
    if t.dim() not in (2, 3) or min(t.shape[-2:]) < 1 or not torch.isfinite(t).all():
        raise ValueError(f"saliency must be a finite 2-D map (H, W) or a batch (N, H, W), got {tuple(t.shape)}")
    h, w = check_size(size)
    if pool and (h > t.shape[-2] or w > t.shape[-1]):
        raise ValueError(f"size {(h, w)} must not exceed the map's shape {tuple(t.shape[-2:])}")
    batch = t.reshape(-1, 1, *t.shape[-2:])  # bilinear with align_corners=False: each cell covers its patch
    out = F.adaptive_avg_pool2d(batch, (h, w)) if pool else F.interpolate(batch, (h, w), mode="bilinear")
    out = out.reshape(*t.shape[:-2], h, w)
    return out.numpy() if isinstance(saliency, np.ndarray) else out


def resize_map(saliency: Any, size: int | tuple[int, int]) -> Any:
    """Up-sample a map ``(h, w)`` or a batch ``(N, h, w)`` bilinearly to ``size``; float64, an array for an array."""
    return _resample(saliency, size, pool=False)


def pool_map(saliency: Any, size: int | tuple[int, int]) -> Any:
    """Average a map ``(H, W)`` or a batch ``(N, H, W)`` down to a ``size`` grid; float64, an array for an array."""
    return _resample(saliency, size, pool=True)


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation of two maps (``scipy.stats.spearmanr``); NaN if either is constant (no ranking)."""
    x = as_tensor(a, "a").cpu().double().reshape(-1).numpy()
    y = as_tensor(b, "b").cpu().double().reshape(-1).numpy()
    if x.size != y.size:
        raise ValueError(f"a and b must have the same number of values, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must not contain NaN or inf values")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
