"""Plotting for image attributions; nothing here computes an attribution.

The steps follow PAIR saliency's ``saliency/core/visualization.py``
(Smilkov et al. 2017 visualise SmoothGrad maps this way):

1. :func:`reduce_channels` turns a ``(C, H, W)`` attribution into an ``(H, W)`` map
   (max |a_c| or the signed sum over channels, or PAIR's sum of |a_c|);
2. :func:`normalize_map` clips it at a percentile (99th by default, as PAIR does)
   and scales it to [0, 1] (unsigned) or [-1, 1] (signed);
3. :func:`show_heatmap`, :func:`show_overlay` and :func:`show_diverging` draw it
   (optionally blurred for display with ``smooth=`` pixels; off by default), with a
   colourbar that states the scale: each panel is scaled to its *own* percentile
   ("p99" on the bar), so colours compare pixels within a panel, not across panels.
   Pass ``colorbar=False`` to leave it out (say the scale in the caption then).

Every function accepts a ``torch.Tensor`` or a NumPy array of shape ``(C, H, W)``,
``(H, W)`` or ``(1, C, H, W)`` (photos may also be ``(H, W, C)``); the
transposition to matplotlib's ``(H, W, C)`` happens once, here. Drawing
functions take ``ax=None`` (a new figure is made) and return the axes. Importing
this module changes no matplotlib settings.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "REDUCTIONS",
    "image_grid",
    "normalize_map",
    "reduce_channels",
    "show_diverging",
    "show_heatmap",
    "show_image",
    "show_overlay",
]

#: Channel reductions understood by :func:`reduce_channels`.
REDUCTIONS: tuple[str, ...] = ("max_abs", "sum", "abs_sum")


# --------------------------------------------------------------------------- array handling


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu()
        x = (x.double() if x.is_floating_point() else x).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{name} is empty, shape {x.shape}")
    return x


def _chw(x: Any, name: str, *, allow_hwc: bool = False) -> np.ndarray:
    """Return a float array (C, H, W) from (C, H, W), (H, W), (1, C, H, W) (or (H, W, C))."""
    a = _to_numpy(x, name)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"{name} must hold a single image; got a batch of shape {a.shape}, index it first")
        a = a[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, H, W), (H, W) or (1, C, H, W), got {a.shape}")
    if allow_hwc and a.shape[-1] in (1, 3) and a.shape[0] not in (1, 3):
        a = np.transpose(a, (2, 0, 1))
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return a.astype(np.float64, copy=False)


def _check_percentile(percentile: Any) -> float:
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")
    return float(percentile)


def _new_ax(ax: Any, size: float = 3.0) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(size, size))
    return ax


def _finish(ax: Any, title: str | None) -> Any:
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _scale_bar(ax: Any, cmap: str, *, signed: bool, percentile: float) -> Any:
    """A slim colourbar beside ``ax`` whose ticks say how the panel was scaled.

    Unsigned maps run from the panel's minimum to its own ``percentile`` ("p99");
    signed maps from -p99 to +p99 of the panel's |map|, with 0 in the middle.
    """
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    p = f"p{percentile:g}"
    mappable = ScalarMappable(Normalize(-1.0 if signed else 0.0, 1.0), matplotlib.colormaps[cmap])
    bar = ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
    if signed:
        bar.set_ticks([-1.0, 0.0, 1.0], labels=[f"-{p}", "0", f"+{p}"])
        bar.set_label(f"÷ own {p} of |map|", fontsize=7, labelpad=1)
    else:
        bar.set_ticks([0.0, 1.0], labels=["min", f"≥{p}"])
        bar.set_label(f"scaled to own {p}", fontsize=7, labelpad=1)
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    return bar


# --------------------------------------------------------------------------- reduction


def reduce_channels(attribution: Any, reduce: str = "max_abs") -> np.ndarray:
    """Collapse the channels of a ``(C, H, W)`` attribution into an ``(H, W)`` map.

    Args:
        attribution: tensor/array ``(C, H, W)``, ``(H, W)`` or ``(1, C, H, W)``.
        reduce: ``"max_abs"`` -- max over channels of |a_c| (non-negative; the
            usual saliency map, Simonyan et al. 2014); ``"sum"`` -- signed sum
            over channels (keeps the sign, for diverging maps); ``"abs_sum"`` --
            sum of |a_c| (PAIR's ``VisualizeImageGrayscale``).

    Returns:
        A float64 array ``(H, W)``.
    """
    a = _chw(attribution, "attribution")
    if reduce == "max_abs":
        return np.abs(a).max(axis=0)
    if reduce == "sum":
        return a.sum(axis=0)
    if reduce == "abs_sum":
        return np.abs(a).sum(axis=0)
    raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")


def normalize_map(saliency: Any, percentile: float = 99.0, *, signed: bool = False) -> np.ndarray:
    """Clip a 2-D map at a percentile and scale it, as PAIR's visualisation does.

    Unsigned (PAIR ``VisualizeImageGrayscale``): ``clip((m - min) / (p - min), 0, 1)``
    with ``p`` the ``percentile`` of ``m``. Signed (PAIR ``VisualizeImageDiverging``):
    ``clip(m / p, -1, 1)`` with ``p`` the ``percentile`` of ``|m|``, so 0 stays 0.
    Clipping the top 1 % keeps a few extreme pixels from washing the map out.
    A constant map gives zeros.
    """
    m = _chw(saliency, "saliency")
    if m.shape[0] != 1:
        raise ValueError(f"saliency must be a 2-D map (H, W); reduce channels first, got shape {m.shape}")
    m = m[0]
    percentile = _check_percentile(percentile)
    if signed:
        span = float(np.percentile(np.abs(m), percentile))
        return np.clip(m / span, -1.0, 1.0) if span > 0 else np.zeros_like(m)
    lo = float(m.min())
    span = float(np.percentile(m, percentile)) - lo
    return np.clip((m - lo) / span, 0.0, 1.0) if span > 0 else np.zeros_like(m)


def _map2d(attribution: Any, reduce: str, percentile: float, signed: bool, smooth: float = 0.0) -> np.ndarray:
    if isinstance(smooth, bool) or not isinstance(smooth, numbers.Real) or not 0 <= smooth < float("inf"):
        raise ValueError(f"smooth must be a finite number >= 0 (pixels), got {smooth!r}")
    m = reduce_channels(attribution, reduce)
    if smooth > 0:
        from scipy.ndimage import gaussian_filter

        m = gaussian_filter(m, float(smooth), mode="nearest")
    return normalize_map(m, percentile, signed=signed)


def _photo(image: Any) -> np.ndarray:
    raw = _to_numpy(image, "image")
    img = _chw(raw, "image", allow_hwc=True)
    if img.shape[0] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels, got shape {img.shape}")
    img = np.transpose(img, (1, 2, 0))
    if np.issubdtype(raw.dtype, np.integer):  # 0-255 photo
        img = img / 255.0
    img = np.clip(img, 0.0, 1.0)
    return img[..., 0] if img.shape[-1] == 1 else img


# --------------------------------------------------------------------------- drawing


def show_image(image: Any, *, ax: Any = None, title: str | None = None) -> Any:
    """Show a photo: ``(H, W, 3)`` / ``(3, H, W)`` / ``(1, 3, H, W)``, float in [0, 1] or integer 0-255.

    Float values outside [0, 1] (e.g. a photo plus noise) are clipped for display.
    """
    ax = _new_ax(ax)
    img = _photo(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    return _finish(ax, title)


def show_heatmap(attribution: Any, *, ax: Any = None, reduce: str = "max_abs", percentile: float = 99.0,
                 cmap: str = "inferno", title: str | None = None, colorbar: bool = True,
                 smooth: float = 0.0) -> Any:
    """Show an attribution as an unsigned heatmap in [0, 1] (channels reduced, clipped at ``percentile``).

    ``smooth`` > 0 blurs the reduced map with a Gaussian of that many pixels
    (for display only, before scaling); say so in the figure when you use it.
    ``colorbar`` (default on) draws a slim bar labelled with the scale: the panel's
    minimum to its own ``percentile`` ("p99").
    """
    colorbar = _check_flag(colorbar, "colorbar")
    ax = _new_ax(ax)
    ax.imshow(_map2d(attribution, reduce, percentile, False, smooth), cmap=cmap, vmin=0, vmax=1)
    if colorbar:
        _scale_bar(ax, cmap, signed=False, percentile=percentile)
    return _finish(ax, title)


def show_overlay(image: Any, attribution: Any, *, ax: Any = None, reduce: str = "max_abs",
                 percentile: float = 99.0, cmap: str = "inferno", alpha: float = 0.8,
                 title: str | None = None, smooth: float = 0.0, colorbar: bool = True) -> Any:
    """Show an unsigned heatmap over a (grey-scaled) photo of the same height and width.

    The map's opacity is ``alpha`` times its value, so low-attribution regions
    show the photo and high-attribution regions show the colour. Pixel-level
    gradient maps are speckled and hard to read over a photo; ``smooth`` > 0
    blurs the reduced map with a Gaussian of that many pixels first (display
    only; say so in the figure). ``colorbar`` as in :func:`show_heatmap`.
    """
    colorbar = _check_flag(colorbar, "colorbar")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    ax = _new_ax(ax)
    img = _photo(image)
    heat = _map2d(attribution, reduce, percentile, False, smooth)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"image {img.shape[:2]} and attribution {heat.shape} must have the same height and width")
    import matplotlib

    grey = img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114])
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    rgba = matplotlib.colormaps[cmap](heat)
    rgba[..., 3] = alpha * heat
    ax.imshow(rgba)
    if colorbar:
        _scale_bar(ax, cmap, signed=False, percentile=percentile)
    return _finish(ax, title)


def show_diverging(attribution: Any, *, ax: Any = None, reduce: str = "sum", percentile: float = 99.0,
                   cmap: str = "RdBu_r", title: str | None = None, colorbar: bool = True,
                   smooth: float = 0.0) -> Any:
    """Show a signed map in [-1, 1]: red raises the class score, blue lowers it, white is 0.

    Channels are reduced by their signed sum by default; the scale is the
    ``percentile`` of |map| (PAIR's ``VisualizeImageDiverging``). ``smooth`` as in
    :func:`show_heatmap`. ``colorbar`` (default on) draws a slim bar from -p99 to
    +p99 of the panel's own |map|.
    """
    colorbar = _check_flag(colorbar, "colorbar")
    ax = _new_ax(ax)
    ax.imshow(_map2d(attribution, reduce, percentile, True, smooth), cmap=cmap, vmin=-1, vmax=1)
    if colorbar:
        _scale_bar(ax, cmap, signed=True, percentile=percentile)
    return _finish(ax, title)


def image_grid(nrows: int, ncols: int, *, size: float = 2.4, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None) -> tuple[Any, np.ndarray]:
    """A figure with an ``(nrows, ncols)`` array of blank axes, labelled by row and column.

    Returns ``(fig, axes)`` with ``axes`` always 2-D; fill it with the ``show_*``
    functions via ``ax=axes[r, c]``. Row labels go on the left, column labels on top.
    """
    for name, v in (("nrows", nrows), ("ncols", ncols)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if isinstance(size, bool) or not isinstance(size, numbers.Real) or size <= 0:
        raise ValueError(f"size must be a positive number, got {size!r}")
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"row_labels must have {nrows} entries, got {len(row_labels)}")
    if col_labels is not None and len(col_labels) != ncols:
        raise ValueError(f"col_labels must have {ncols} entries, got {len(col_labels)}")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for r, label in enumerate(row_labels or []):
        axes[r, 0].set_ylabel(label, fontsize=9)
    for c, label in enumerate(col_labels or []):
        axes[0, c].set_title(label, fontsize=9)
    if title is not None:
        fig.suptitle(title, fontsize=11)
    return fig, axes
