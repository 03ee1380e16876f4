"""Comparing attribution maps across network depth: layer maps, effective resolution, agreement.

Attributions to a stage's activation ``(C, h, w)`` become a photo-sized map by
summing over channels and upsampling (as Grad-CAM does for its maps, Selvaraju
et al. 2017); :func:`layer_map` does that with the shared primitives
:func:`interp_helpers.maps.reduce_channels` and :func:`interp_helpers.maps.resize_map`.
Three summaries compare such maps:

* :func:`effective_resolution` -- how many independent cells fit across a map,
  from the width of its spatial autocorrelation (an upsampled 7 x 7 map has
  about 7 whatever its pixel count);
* Spearman's rho between two maps, pixel by pixel -- :func:`interp_helpers.maps.spearman`
  (used for this purpose by Adebayo et al. 2018, "Sanity checks for saliency maps";
  NaN for a constant map);
* :func:`top_fraction_overlap` -- the share of the top-k % pixels of one map
  that are also in the top-k % of the other (chance level: k %).

:func:`agreement_table` tabulates the last two for every pair of maps, optionally
after :func:`interp_helpers.maps.pool_map` has averaged every map down to a
common coarse grid: a 7 x 7 stage map cannot express finer structure than its
grid, and comparing it pixel by pixel with a pixel-noisy input map mostly
measures the noise.

Which *channels* carry a stage's attribution: :func:`channel_importance` sums
|attribution| over the positions of each channel, :func:`top_channel_share`
turns that into the share of the total carried by the k most important channels
(k = 1 .. C), and :func:`layer_activations` returns the stage's activations, so
that the most important channel's activation map can be shown next to the photo.
Nothing here plots.

Channel reduction: every function of the package defaults to
:data:`interp_helpers.maps.DEFAULT_REDUCTION` (``"abs_sum"``) except the two that
show signs, :func:`~interp_helpers.plotting.maps.show_diverging` and :func:`layer_map`,
whose default is the signed ``"sum"``: attributions are additive, so the sum over a location's channels *is*
that location's attribution, and layer maps are shown signed (diverging, as
shap's ``image_plot`` does).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..maps import REDUCTIONS, pool_map, reduce_channels, resize_map, spearman
from ..validation import check_choice, check_fraction, check_size

from ..attribution.layers import layer_activations  # re-exported: the layer machinery lives in attribution.layers

__all__ = [
    "agreement_table",
    "channel_importance",
    "effective_resolution",
    "layer_activations",
    "layer_map",
    "top_channel_share",
    "top_fraction_overlap",
]


def _as_2d(m: Any, name: str) -> np.ndarray:
    if isinstance(m, torch.Tensor):
        m = m.detach().cpu().double().numpy()
    if not isinstance(m, np.ndarray):
        raise TypeError(f"{name} must be a 2-D torch.Tensor or numpy array, got {type(m).__name__}")
    if m.ndim != 2 or min(m.shape) < 2:
        raise ValueError(f"{name} must be a 2-D map (H, W) with H, W >= 2, got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.number) or np.issubdtype(m.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {m.dtype}")
    m = m.astype(np.float64)
    if not np.isfinite(m).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return m


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape} (upsample with layer_map)")


def layer_map(attribution: torch.Tensor, size: int | tuple[int, int] | None = None, *,
              reduction: str = "sum") -> torch.Tensor:
    """Channel-reduced, optionally upsampled maps: ``(N, C, h, w)`` or ``(C, h, w)`` -> ``(N, H, W)``.

    ``reduction`` is one of :data:`interp_helpers.maps.REDUCTIONS`. Its default,
    ``"sum"``, is the package's one exception to ``maps.DEFAULT_REDUCTION``
    (``"abs_sum"``): attributions are additive, so the sum over channels is the
    attribution of the location and keeps its sign (shap's ``image_plot`` shows
    the same); ``"abs_sum"`` sums magnitudes. ``size`` (an int or ``(H, W)``)
    upsamples bilinearly with :func:`interp_helpers.maps.resize_map`
    (``align_corners=False``: each activation cell covers its patch of the photo);
    ``None`` keeps the layer's grid. Returns float64 on the CPU.
    """
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(f"attribution must be a torch.Tensor (N, C, h, w) or (C, h, w), got {type(attribution).__name__}")
    a = attribution.detach()
    if a.dim() == 3:
        a = a.unsqueeze(0)
    if a.dim() != 4 or a.shape[0] < 1 or min(a.shape[1:]) < 1:
        raise ValueError(f"attribution must be (N, C, h, w) or (C, h, w), got shape {tuple(attribution.shape)}")
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    if size is not None:
        size = check_size(size)
    if a.is_complex() or a.dtype == torch.bool:
        raise ValueError(f"attribution must hold real numbers, got dtype {a.dtype}")
    a = a.to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(a).all():
        raise ValueError("attribution contains NaN or inf values")
    m = reduce_channels(a, reduction)
    return m if size is None else resize_map(m, size)


def effective_resolution(saliency: Any) -> float:
    """Independent cells across a 2-D map: ``mean(H, W) / (2 * half-width of its autocorrelation)``.

    The map's mean is removed, its circular autocorrelation computed by FFT
    and normalised to 1 at lag 0, and the half-width at half maximum read off
    (linear interpolation) along rows and along columns, then averaged. For a
    map made of ``k x k`` independent constant blocks the autocorrelation falls
    as ``1 - lag / block`` and the result is ``k``; for white noise it is about
    the pixel count across (capped there). Compare maps of the same size: an
    input-level gradient map resolves tens of cells across a 224-pixel photo,
    an upsampled 7 x 7 stage map at most 7.
    """
    m = _as_2d(saliency, "saliency")
    m = m - m.mean()
    power = np.abs(np.fft.fft2(m)) ** 2
    acf = np.real(np.fft.ifft2(power))
    if acf[0, 0] <= 0:
        raise ValueError("saliency is constant: its resolution is undefined")
    acf = acf / acf[0, 0]
    widths = []
    for profile in (acf[0, : m.shape[1] // 2 + 1], acf[: m.shape[0] // 2 + 1, 0]):
        below = np.nonzero(profile < 0.5)[0]
        if below.size == 0:
            widths.append(float(profile.size - 1))
            continue
        j = int(below[0])  # profile[j - 1] >= 0.5 > profile[j]
        hi, lo = profile[j - 1], profile[j]
        widths.append(j - 1 + (hi - 0.5) / (hi - lo))
    across = 0.5 * (m.shape[0] + m.shape[1])
    return float(min(across, across / (2 * np.mean(widths))))


def _top(m: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-m.ravel(), kind="stable")  # ties broken by position, the same way for both maps
    mask = np.zeros(m.size, dtype=bool)
    mask[order[:k]] = True
    return mask


def top_fraction_overlap(a: Any, b: Any, fraction: float = 0.1) -> float:
    """Share of the top ``fraction`` pixels of ``a`` that are also among the top ``fraction`` of ``b``.

    Both sets have ``k = ceil(fraction * H * W)`` pixels, so this is also the
    Dice coefficient of the two regions; it is 1 for maps with the same
    ranking and ``fraction`` on average for unrelated maps. Pass magnitudes
    (``abs``) to compare where maps are strong whatever the sign.
    """
    x, y = _as_2d(a, "a"), _as_2d(b, "b")
    _same_shape(x, y)
    fraction = check_fraction(fraction, "fraction")
    k = max(1, math.ceil(fraction * x.size))
    return float((_top(x, k) & _top(y, k)).sum() / k)


def agreement_table(maps: Mapping[str, Any], *, fraction: float = 0.1,
                    grid: int | tuple[int, int] | None = None) -> "Any":
    """Spearman's rho and top-``fraction`` overlap for every pair of named maps (a pandas DataFrame).

    Columns: ``a``, ``b``, ``spearman`` (:func:`interp_helpers.maps.spearman`: NaN when
    either map is constant), ``top_overlap``; one row per unordered pair, in the order of
    ``maps``. All maps must have the same shape. With ``grid`` every map is first
    averaged down to that grid (:func:`interp_helpers.maps.pool_map`).
    """
    import pandas as pd

    if not isinstance(maps, Mapping) or len(maps) < 2:
        raise ValueError(f"maps must be a mapping of at least two named maps, got {type(maps).__name__}")
    fraction = check_fraction(fraction, "fraction")
    arrays = {str(k): _as_2d(v, f"maps[{k!r}]") for k, v in maps.items()}
    if grid is not None:
        grid = check_size(grid, "grid")
        arrays = {k: pool_map(v, grid) for k, v in arrays.items()}
    rows = []
    for (na, a), (nb, b) in itertools.combinations(arrays.items(), 2):
        if a.shape != b.shape:
            raise ValueError(f"maps must share one shape, got {na}: {a.shape} and {nb}: {b.shape}")
        rows.append({"a": na, "b": nb, "spearman": spearman(a, b),
                     "top_overlap": top_fraction_overlap(a, b, fraction)})
    return pd.DataFrame(rows, columns=["a", "b", "spearman", "top_overlap"])


# --------------------------------------------------------------------------- channels


def _check_stage_attribution(attribution: Any) -> torch.Tensor:
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(f"attribution must be a torch.Tensor (N, C, h, w) or (C, h, w), got {type(attribution).__name__}")
    a = attribution.detach()
    if a.dim() == 3:
        a = a.unsqueeze(0)
    if a.dim() != 4 or min(a.shape) < 1:
        raise ValueError(f"attribution must be (N, C, h, w) or (C, h, w), got shape {tuple(attribution.shape)}")
    if not a.is_floating_point():
        raise ValueError(f"attribution must be a floating-point tensor, got dtype {a.dtype}")
    if not torch.isfinite(a).all():
        raise ValueError("attribution contains NaN or inf values")
    return a.cpu().double()


def channel_importance(attribution: torch.Tensor) -> torch.Tensor:
    """Total |attribution| of each channel: ``(N, C, h, w)`` or ``(C, h, w)`` -> ``(N, C)``, float64.

    Channel ``c`` of image ``n`` gets ``sum over (i, j) of |a[n, c, i, j]|``:
    how much attribution, of either sign, passes through that feature map.
    """
    return _check_stage_attribution(attribution).abs().sum(dim=(2, 3))


def top_channel_share(attribution: torch.Tensor) -> torch.Tensor:
    """Share of the total |attribution| carried by the k most important channels, k = 1 .. C.

    Returns ``(N, C)`` float64: column ``k - 1`` is the share carried by the
    ``k`` channels with the largest :func:`channel_importance` (so each row
    rises to 1 at ``k = C``). If every channel carried the same amount, the
    share would be ``k / C``; a row that reaches 0.5 at small ``k`` means a few
    channels carry most of the attribution. An all-zero attribution is refused
    (its shares are undefined).
    """
    importance = channel_importance(attribution)
    total = importance.sum(dim=1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("attribution is zero for some image: its channel shares are undefined")
    ranked = importance.sort(dim=1, descending=True).values
    return (ranked.cumsum(dim=1) / total).clamp(max=1.0)
