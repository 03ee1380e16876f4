"""Comparing attribution maps across network depth: layer maps, effective resolution, agreement.

Attributions to a stage's activation ``(C, h, w)`` become a photo-sized map by
summing over channels and upsampling (as Grad-CAM does for its maps, Selvaraju
et al. 2017); :func:`layer_map` does that. Three summaries compare such maps:

* :func:`effective_resolution` -- how many independent cells fit across a map,
  from the width of its spatial autocorrelation (an upsampled 7 x 7 map has
  about 7 whatever its pixel count);
* :func:`rank_correlation` -- Spearman's rho between two maps, pixel by pixel
  (used for this purpose by Adebayo et al. 2018, "Sanity checks for saliency maps");
* :func:`top_fraction_overlap` -- the share of the top-k % pixels of one map
  that are also in the top-k % of the other (chance level: k %).

:func:`agreement_table` tabulates the last two for every pair of maps, optionally
after :func:`pool_map` has averaged every map down to a common coarse grid: a
7 x 7 stage map cannot express finer structure than its grid, and comparing it
pixel by pixel with a pixel-noisy input map mostly measures the noise.

Which *channels* carry a stage's attribution: :func:`channel_importance` sums
|attribution| over the positions of each channel, :func:`top_channel_share`
turns that into the share of the total carried by the k most important channels
(k = 1 .. C), and :func:`layer_activations` returns the stage's activations, so
that the most important channel's activation map can be shown next to the photo.
Nothing here plots.
"""
from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import as_module, check_inputs, check_positive_int

from ..hooks import frozen_model
from ..attribution.expected_gradients import _activations, _check_layer, _model_device

__all__ = [
    "agreement_table",
    "channel_importance",
    "effective_resolution",
    "layer_activations",
    "layer_map",
    "pool_map",
    "rank_correlation",
    "top_channel_share",
    "top_fraction_overlap",
]

_REDUCTIONS = ("sum", "abs_sum")


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

    ``reduction="sum"`` keeps the sign (attributions are additive, so the sum
    over channels is the attribution of the location; shap's ``image_plot``
    shows the same); ``"abs_sum"`` sums magnitudes. ``size`` (an int or
    ``(H, W)``) upsamples bilinearly (``align_corners=False``: each activation
    cell covers its patch of the photo); ``None`` keeps the layer's grid.
    Returns float64 on the CPU.
    """
    if not isinstance(attribution, torch.Tensor):
        raise TypeError(f"attribution must be a torch.Tensor (N, C, h, w) or (C, h, w), got {type(attribution).__name__}")
    a = attribution.detach()
    if a.dim() == 3:
        a = a.unsqueeze(0)
    if a.dim() != 4 or a.shape[0] < 1 or min(a.shape[1:]) < 1:
        raise ValueError(f"attribution must be (N, C, h, w) or (C, h, w), got shape {tuple(attribution.shape)}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    a = a.cpu().double()
    m = a.sum(1, keepdim=True) if reduction == "sum" else a.abs().sum(1, keepdim=True)
    if size is not None:
        m = F.interpolate(m, size=_check_size(size), mode="bilinear", align_corners=False)
    return m[:, 0]


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


def rank_correlation(a: Any, b: Any) -> float:
    """Spearman's rho between two maps of the same shape (ties get average ranks)."""
    from scipy.stats import spearmanr

    x, y = _as_2d(a, "a"), _as_2d(b, "b")
    _same_shape(x, y)
    for m, name in ((x, "a"), (y, "b")):
        if np.ptp(m) == 0:
            raise ValueError(f"{name} is constant: its rank correlation is undefined")
    return float(spearmanr(x.ravel(), y.ravel()).statistic)


def _check_fraction(fraction: Any) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (0 < float(fraction) <= 1):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    return float(fraction)


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
    fraction = _check_fraction(fraction)
    k = max(1, math.ceil(fraction * x.size))
    return float((_top(x, k) & _top(y, k)).sum() / k)


def _check_size(size: Any, name: str = "size") -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, tuple) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"{name} must be an int >= 1 or a pair of them, got {size!r}")
    return int(size[0]), int(size[1])


def pool_map(saliency: Any, size: int | tuple[int, int]) -> np.ndarray:
    """Average a 2-D map down to a ``size`` grid (adaptive average pooling), e.g. a stage's 7 x 7.

    Each output cell is the mean of the pixels it covers (PyTorch's
    ``adaptive_avg_pool2d``); a map made of blocks aligned with the grid
    returns the block values. ``size`` may not exceed the map's shape.
    """
    m = _as_2d(saliency, "saliency")
    h, w = _check_size(size)
    if h > m.shape[0] or w > m.shape[1]:
        raise ValueError(f"size {(h, w)} must not exceed the map's shape {m.shape}")
    pooled = F.adaptive_avg_pool2d(torch.from_numpy(m)[None, None], (h, w))
    return pooled[0, 0].numpy()


def agreement_table(maps: Mapping[str, Any], *, fraction: float = 0.1,
                    grid: int | tuple[int, int] | None = None) -> "Any":
    """Spearman's rho and top-``fraction`` overlap for every pair of named maps (a pandas DataFrame).

    Columns: ``a``, ``b``, ``spearman``, ``top_overlap``; one row per unordered pair,
    in the order of ``maps``. All maps must have the same shape. With ``grid``
    every map is first averaged down to that grid (:func:`pool_map`).
    """
    import pandas as pd

    if not isinstance(maps, Mapping) or len(maps) < 2:
        raise ValueError(f"maps must be a mapping of at least two named maps, got {type(maps).__name__}")
    fraction = _check_fraction(fraction)
    arrays = {str(k): _as_2d(v, f"maps[{k!r}]") for k, v in maps.items()}
    if grid is not None:
        grid = _check_size(grid, "grid")
        arrays = {k: pool_map(v, grid) for k, v in arrays.items()}
    rows = []
    for (na, a), (nb, b) in itertools.combinations(arrays.items(), 2):
        if a.shape != b.shape:
            raise ValueError(f"maps must share one shape, got {na}: {a.shape} and {nb}: {b.shape}")
        rows.append({"a": na, "b": nb, "spearman": rank_correlation(a, b),
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


def layer_activations(model: Any, inputs: torch.Tensor, layer: Any, *, batch_size: int = 50) -> torch.Tensor:
    """The output of ``layer`` (a submodule of ``model``) for ``inputs``: ``(N, *activation shape)``.

    Runs ``model`` on ``inputs`` in chunks of ``batch_size`` without gradients
    and records the layer's output with a forward hook. The model is
    left exactly as found (training flags, gradients, hooks), also on error.
    Raises if ``layer`` is not in ``model``, is not called exactly once per
    pass, or returns something other than one tensor. Returned on ``inputs``'
    device.
    """
    module = as_module(model)
    inputs = check_inputs(inputs)
    layer = _check_layer(layer, module, "output")
    if layer is None:
        raise TypeError("layer must be a torch.nn.Module inside model, got None")
    batch_size = check_positive_int(batch_size, "batch_size")
    device = _model_device(module, inputs.device)
    with frozen_model(module) as m:
        acts, _ = _activations(m, layer, "output", inputs.detach().to(device), batch_size, stop=False)
    return acts.to(inputs.device)
