"""Comparing attribution maps across network depth: layer maps, effective resolution, agreement, channels.

A stage's attribution ``(C, h, w)`` becomes a photo-sized map by reducing channels and up-sampling, as
Grad-CAM does (Selvaraju et al. 2017); maps are compared by Spearman's rho (as in Adebayo et al. 2018) and
by the overlap of their top pixels, optionally on a common coarse grid (a 7 x 7 stage map has no finer detail).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from ._common import check_positive, check_size
from .maps import pool_map, reduce_channels, resize_map, spearman


def _stage(attribution: Any) -> torch.Tensor:
    """A finite floating ``(N, C, h, w)`` (or ``(C, h, w)``) tensor as float64 ``(N, C, h, w)`` on the CPU."""
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(f"attribution must be a torch.Tensor (N, C, h, w), got {type(attribution).__name__}")
    a = attribution.detach()
    a = a[None] if a.dim() == 3 else a
    if a.dim() != 4 or min(a.shape) < 1:
        raise ValueError(f"attribution must be (N, C, h, w) or (C, h, w), got shape {tuple(attribution.shape)}")
    if not a.is_floating_point() or not torch.isfinite(a).all():
        raise ValueError(f"attribution must be a floating-point tensor without NaN or inf, got dtype {a.dtype}")
    return a.to(device="cpu", dtype=torch.float64)


def _map(m: Any, name: str) -> np.ndarray:
    """A finite 2-D map ``(H, W)``, H, W >= 2, as a float64 array."""
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().double().numpy()
    if not isinstance(m, np.ndarray):
        raise TypeError(f"{name} must be a 2-D torch.Tensor or numpy array, got {type(m).__name__}")
    if m.ndim != 2 or min(m.shape) < 2 or m.dtype.kind not in "iuf" or not np.isfinite(m).all():
        raise ValueError(f"{name} must be a finite real 2-D map (H, W) with H, W >= 2, got shape {m.shape}")
    return m.astype(np.float64)


def layer_map(attribution: torch.Tensor, size: int | tuple[int, int] | None = None, *,
              reduction: str = "sum") -> torch.Tensor:
    """Channel-reduced, optionally up-sampled stage maps: ``(N, C, h, w)`` or ``(C, h, w)`` -> ``(N, H, W)``.

    The signed sum by default (it keeps the sign: :mod:`interp_helpers.maps`); ``size`` up-samples bilinearly
    (:func:`~interp_helpers.maps.resize_map`), ``None`` keeps the grid. float64 on the CPU.
    """
    m = reduce_channels(_stage(attribution), reduction)
    return m if size is None else resize_map(m, size)


def effective_resolution(saliency: Any) -> float:
    """Independent cells across a 2-D map: ``mean(H, W) / (2 * half-width at half maximum of its autocorrelation)``.

    The mean-removed map's circular autocorrelation (by FFT), normalised to 1 at lag 0, is read along rows and
    columns. A map of ``k x k`` independent constant blocks gives ``k``; white noise about its size (the cap).
    """
    m = _map(saliency, "saliency")
    acf = np.real(np.fft.ifft2(np.abs(np.fft.fft2(m - m.mean())) ** 2))
    if acf[0, 0] <= 0:
        raise ValueError("saliency is constant: its resolution is undefined")
    acf = acf / acf[0, 0]
    widths = []
    for p in (acf[0, : m.shape[1] // 2 + 1], acf[: m.shape[0] // 2 + 1, 0]):
        below = np.nonzero(p < 0.5)[0]
        j = int(below[0]) if below.size else None  # p[j - 1] >= 0.5 > p[j]: interpolate linearly
        widths.append(float(p.size - 1) if j is None else j - 1 + (p[j - 1] - 0.5) / (p[j - 1] - p[j]))
    across = 0.5 * (m.shape[0] + m.shape[1])
    return float(min(across, across / (2 * np.mean(widths))))


def top_fraction_overlap(a: Any, b: Any, fraction: float = 0.1) -> float:
    """Share of the top ``fraction`` pixels of ``a`` also among the top ``fraction`` of ``b`` (chance: ``fraction``).

    Both sets hold ``ceil(fraction * H * W)`` pixels (ties broken by position), so this is their Dice coefficient.
    """
    x, y = _map(a, "a"), _map(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same shape, got {x.shape} and {y.shape} (up-sample with layer_map)")
    k = max(1, math.ceil(check_positive(fraction, "fraction", 1.0) * x.size))
    top_x, top_y = (np.argsort(-m.ravel(), kind="stable")[:k] for m in (x, y))
    return float(np.intersect1d(top_x, top_y).size / k)


def agreement_table(maps: Mapping[str, Any], *, fraction: float = 0.1,
                    grid: int | tuple[int, int] | None = None) -> pd.DataFrame:
    """Spearman's rho (NaN if a map is constant) and :func:`top_fraction_overlap` for each pair of named maps.

    One row per unordered pair; ``grid`` first averages every map down to that grid (:func:`~.maps.pool_map`).
    """
    if not isinstance(maps, Mapping) or len(maps) < 2:
        raise ValueError(f"maps must be a mapping of at least two named maps, got {type(maps).__name__}")
    fraction = check_positive(fraction, "fraction", 1.0)
    arrays = {str(k): _map(v, f"maps[{k!r}]") for k, v in maps.items()}
    if grid is not None:
        grid = check_size(grid, "grid")
        arrays = {k: pool_map(v, grid) for k, v in arrays.items()}
    rows = []
    for (na, a), (nb, b) in itertools.combinations(arrays.items(), 2):
        if a.shape != b.shape:
            raise ValueError(f"maps must share one shape, got {na}: {a.shape} and {nb}: {b.shape}")
        rows.append((na, nb, spearman(a, b), top_fraction_overlap(a, b, fraction)))
    return pd.DataFrame(rows, columns=["a", "b", "spearman", "top_overlap"])


def channel_importance(attribution: torch.Tensor) -> torch.Tensor:
    """Total |attribution| of each channel, ``sum_ij |a[n, c, i, j]|``: ``(N, C, h, w)`` -> ``(N, C)`` float64."""
    return _stage(attribution).abs().sum(dim=(2, 3))


def top_channel_share(attribution: torch.Tensor) -> torch.Tensor:
    """Share of the total |attribution| carried by the k most important channels, k = 1 .. C: ``(N, C)`` float64.

    Each row rises to 1 at ``k = C``; equal channels give ``k / C``. An all-zero attribution is refused.
    """
    ranked = channel_importance(attribution).sort(dim=1, descending=True).values.cumsum(dim=1)
    if (ranked[:, -1] <= 0).any():
        raise ValueError("attribution is zero for some image: its channel shares are undefined")
    return (ranked / ranked[:, -1:]).clamp(max=1.0)
