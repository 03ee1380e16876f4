"""Map primitives, written once: channel reduction, Gaussian blur, resampling and rank correlation.

Every module that reduces, blurs, resizes or rank-correlates a map calls these;
none keeps its own copy.

* :func:`reduce_channels` -- ``(..., C, H, W) -> (..., H, W)`` with one keyword,
  ``reduction``, whose default is :data:`DEFAULT_REDUCTION` (``"abs_sum"``).
* :func:`gaussian_blur` -- separable Gaussian blur of ``(N, C, H, W)`` tensors,
  truncated at ``truncate`` sigma with edges replicated: scipy's
  ``gaussian_filter(mode="nearest", truncate=3.0)`` on the two spatial axes.
* :func:`resize_map` (bilinear up-sampling) and :func:`pool_map` (adaptive
  average down-sampling) of 2-D maps or batches of them.
* :func:`spearman` -- Spearman's rho with average ranks for ties; **a constant
  map has no ranking, so the result is NaN** (the one policy, everywhere).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .validation import as_tensor, check_choice, check_inputs, check_number, check_size

__all__ = [
    "DEFAULT_REDUCTION",
    "REDUCTIONS",
    "gaussian_blur",
    "pool_map",
    "reduce_channels",
    "resize_map",
    "spearman",
]

#: Channel reductions understood by :func:`reduce_channels`.
REDUCTIONS: tuple[str, ...] = ("abs_sum", "sum", "max_abs")

#: ``sum_c |a_c|``: the convention of the saliency-map literature (Smilkov et al.
#: 2017 and Adebayo et al. 2018 sum absolute values; PAIR's ``VisualizeImageGrayscale``),
#: and a common footing for signed maps (gradients) and non-negative ones (SmoothGrad², VarGrad).
DEFAULT_REDUCTION: str = "abs_sum"


def reduce_channels(attribution: Any, reduction: str = DEFAULT_REDUCTION) -> Any:
    """Collapse the channel axis of ``(..., C, H, W)`` maps into ``(..., H, W)``.

    Args:
        attribution: a tensor or NumPy array with at least three axes, channels third from last
            (one map ``(C, H, W)`` or a batch ``(N, C, H, W)``).
        reduction: ``"abs_sum"`` (default) -- ``sum_c |a_c|``; ``"sum"`` -- the signed sum
            (attributions are additive, so this is the attribution of the location; for
            diverging maps); ``"max_abs"`` -- ``max_c |a_c|`` (Simonyan et al. 2014).

    Returns:
        The same kind (tensor or array), dtype and device as ``attribution``, one axis fewer.
    """
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    is_array = isinstance(attribution, np.ndarray)
    a = as_tensor(attribution, "attribution").detach()
    if a.dim() < 3:
        raise ValueError(f"attribution must have shape (..., C, H, W), got {tuple(a.shape)}")
    if a.is_complex() or a.dtype == torch.bool:
        raise ValueError(f"attribution must hold real numbers, got dtype {a.dtype}")
    if reduction == "sum":
        out = a.sum(dim=-3)
    elif reduction == "abs_sum":
        out = a.abs().sum(dim=-3)
    else:
        out = a.abs().amax(dim=-3)
    return out.numpy() if is_array else out


def _kernel(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)  # scipy.ndimage's radius
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(inputs: torch.Tensor, sigma: float, *, truncate: float = 3.0) -> torch.Tensor:
    """Blur every channel of ``(N, C, H, W)`` images with a Gaussian of ``sigma`` pixels.

    Separable, truncated at ``truncate * sigma`` (radius ``int(truncate * sigma + 0.5)``),
    edges replicated: ``scipy.ndimage.gaussian_filter(x, (0, 0, sigma, sigma),
    mode="nearest", truncate=truncate)``. ``sigma=0`` returns a copy. The kernel sums to 1,
    so blurring commutes with per-channel normalisation: preprocessed tensors can be
    blurred directly. Returns a new tensor of the inputs' shape, dtype and device.
    """
    x = check_inputs(inputs).detach()
    sigma = check_number(sigma, "sigma", low=0.0)
    truncate = check_number(truncate, "truncate", low=0.0, low_open=True)
    if sigma == 0:
        return x.clone()
    k = _kernel(sigma, truncate, x.dtype, x.device)
    r = (k.numel() - 1) // 2
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def _as_maps(m: Any, name: str) -> tuple[torch.Tensor, bool, bool]:
    """``(N, 1, H, W)`` float64 CPU tensor from a 2-D map or a batch ``(N, H, W)``; plus (was 2-D, was array)."""
    is_array = isinstance(m, np.ndarray)
    t = as_tensor(m, name).detach()
    if t.dim() not in (2, 3) or min(t.shape[-2:]) < 1:
        raise ValueError(f"{name} must be a 2-D map (H, W) or a batch of them (N, H, W), got {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    t = t.to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf values")
    two_d = t.dim() == 2
    return (t[None, None] if two_d else t[:, None]), two_d, is_array


def _back(t: torch.Tensor, two_d: bool, is_array: bool) -> Any:
    t = t[0, 0] if two_d else t[:, 0]
    return t.numpy() if is_array else t


def resize_map(saliency: Any, size: int | tuple[int, int]) -> Any:
    """Up-sample a 2-D map ``(h, w)`` or a batch ``(N, h, w)`` bilinearly to ``size``.

    ``align_corners=False``: each cell of a coarse (e.g. 7 x 7 stage) map covers its
    patch of the photo. Returns float64, an array for an array and a CPU tensor for a tensor.
    """
    t, two_d, is_array = _as_maps(saliency, "saliency")
    out = F.interpolate(t, size=check_size(size), mode="bilinear", align_corners=False)
    return _back(out, two_d, is_array)


def pool_map(saliency: Any, size: int | tuple[int, int]) -> Any:
    """Average a 2-D map (or a batch ``(N, H, W)``) down to a ``size`` grid, e.g. a stage's 7 x 7.

    Each output cell is the mean of the pixels it covers (``adaptive_avg_pool2d``); a
    map made of blocks aligned with the grid returns the block values. ``size`` may not
    exceed the map's shape. Returns float64, an array for an array and a CPU tensor for a tensor.
    """
    t, two_d, is_array = _as_maps(saliency, "saliency")
    h, w = check_size(size)
    if h > t.shape[-2] or w > t.shape[-1]:
        raise ValueError(f"size {(h, w)} must not exceed the map's shape {tuple(t.shape[-2:])}")
    return _back(F.adaptive_avg_pool2d(t, (h, w)), two_d, is_array)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank (``scipy.stats.rankdata(method="average")``)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.nonzero(starts)[0], x.size]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = 0.5 * (bounds[group] + bounds[group + 1] - 1) + 1
    return ranks


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation of two maps of the same shape (ties get average ranks).

    The Pearson correlation of the average ranks, as ``scipy.stats.spearmanr``.
    **NaN when either map is constant** (it has no ranking); callers that average
    correlations decide how to treat NaN. Accepts tensors or arrays of any shape.
    """
    x = as_tensor(a, "a").detach().cpu().double().reshape(-1).numpy()
    y = as_tensor(b, "b").detach().cpu().double().reshape(-1).numpy()
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same number of values, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must not contain NaN or inf values")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float(np.dot(rx, ry) / np.sqrt(np.dot(rx, rx) * np.dot(ry, ry)))
