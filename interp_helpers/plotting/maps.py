"""Plotting for image attributions; nothing here computes an attribution.

The steps follow PAIR saliency's ``saliency/core/visualization.py``
(Smilkov et al. 2017 visualise SmoothGrad maps this way):

1. :func:`interp_helpers.maps.reduce_channels` turns a ``(C, H, W)`` attribution into an
   ``(H, W)`` map. Every drawing function takes its ``reduction=`` keyword:
   unsigned panels (:func:`show_heatmap`, :func:`show_overlay`) default to
   :data:`~interp_helpers.maps.DEFAULT_REDUCTION` (``"abs_sum"``, sum of |a_c|, PAIR's
   ``VisualizeImageGrayscale``), the package's one convention; :func:`show_diverging`
   defaults to ``"sum"`` (the signed sum), because it shows signs -- a sum of
   absolute values would have none;
2. :func:`normalize_map` clips it at a percentile (99th by default, as PAIR does)
   and scales it to [0, 1] (unsigned) or [-1, 1] (signed) -- display scaling only;
3. :func:`show_heatmap`, :func:`show_overlay` and :func:`show_diverging` draw it
   (optionally blurred for display with ``smooth=`` pixels, by
   :func:`interp_helpers.maps.gaussian_blur`; off by default), with a colourbar that
   states the scale: each panel is scaled to its *own* percentile ("p99" on the bar),
   so colours compare pixels within a panel, not across panels. Pass
   ``colorbar=False`` to leave it out and draw one shared bar for a group of panels
   with :func:`scale_bar` (or say the scale in the caption).

Every function accepts a ``torch.Tensor`` or a NumPy array of shape ``(C, H, W)``,
``(H, W)`` or ``(1, C, H, W)`` (photos may also be ``(H, W, C)``); the
transposition to matplotlib's ``(H, W, C)`` happens once, here. Drawing
functions take ``ax=None`` (a new figure is made) and return the axes.
matplotlib is imported by the functions that draw: importing this module loads
neither it nor pyplot, and changes no matplotlib settings.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..maps import DEFAULT_REDUCTION, gaussian_blur, reduce_channels
from ..validation import check_flag, check_number, check_positive_int

__all__ = [
    "DIVERGING_CMAP",
    "HEAT_CMAP",
    "image_grid",
    "normalize_map",
    "scale_bar",
    "show_diverging",
    "show_heatmap",
    "show_image",
    "show_overlay",
]

#: Colour map of unsigned panels (:func:`show_heatmap`, :func:`show_overlay`) and their scale bars.
HEAT_CMAP = "inferno"
#: Colour map of signed panels (:func:`show_diverging`): red > 0, white 0, blue < 0.
DIVERGING_CMAP = "RdBu_r"


# --------------------------------------------------------------------------- array handling


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.double() if x.is_floating_point() else x).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
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
    return np.array(a, dtype=np.float64)  # a writable copy: the caller's array is never shared


def _check_percentile(percentile: Any) -> float:
    return check_number(percentile, "percentile", low=0.0, high=100.0, low_open=True)


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
        # a column label from image_grid stays above the panel's own title
        column = getattr(ax, "_interp_column_label", None)
        ax.set_title(title if column is None else f"{column}\n{title}", fontsize=9)
    return ax


# --------------------------------------------------------------------------- scale bars


def _check_axes_group(fig: Any, axes: Any) -> list[Any]:
    """The axes of ``axes`` (one Axes or a non-empty sequence/array of them), all on ``fig``."""
    from matplotlib.axes import Axes

    group = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if not group or not all(isinstance(a, Axes) for a in group):
        raise TypeError(f"axes must be a matplotlib Axes or a non-empty sequence of them, got {axes!r}")
    if any(a.figure is not fig for a in group):
        raise ValueError("axes must all belong to fig")
    return group


def scale_bar(fig: Any, axes: Any, *, cmap: Any = None, signed: bool = False, percentile: float = 99.0,
              label: str | None = None, **colorbar_kw: Any) -> Any:
    """Draw ONE colourbar for a group of panels that were each scaled to their own percentile.

    The panels drawn by :func:`show_heatmap`, :func:`show_overlay` (unsigned) and
    :func:`show_diverging` (signed) with ``colorbar=False`` all share a scale in
    *units of their own percentile*, so one bar states it for all of them:
    unsigned maps run from the panel's minimum ("min") to its ``percentile``
    ("≥p99", clipped above); signed maps from -p99 to +p99 of the panel's |map|,
    with 0 in the middle. The bar does not claim that the panels' raw values compare.

    Args:
        fig: the matplotlib ``Figure`` holding the panels.
        axes: one ``Axes`` or a sequence / array of them (e.g. ``axes[:, 1:]``); the
            bar is placed beside them, taking its room from them.
        cmap: the panels' colour map, a name or a ``Colormap`` (default
            :data:`HEAT_CMAP` unsigned, :data:`DIVERGING_CMAP` signed).
        signed: ``True`` for :func:`show_diverging` panels.
        percentile: the percentile the panels were scaled to (in (0, 100]).
        label: the bar's label (default ``"scaled to own p99"`` unsigned,
            ``"scale: own p99 of |map|"`` signed).
        **colorbar_kw: passed on to ``fig.colorbar`` (e.g. ``shrink=0.6``,
            ``location="bottom"``); the defaults ``fraction=0.046, pad=0.03`` make a slim bar.

    Returns:
        The ``matplotlib.colorbar.Colorbar``.

    The per-panel bars of the ``show_*`` functions (``colorbar=True``) are this bar for one axes.
    """
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure, SubFigure

    if not isinstance(fig, (Figure, SubFigure)):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    group = _check_axes_group(fig, axes)
    signed = check_flag(signed, "signed")
    percentile = _check_percentile(percentile)
    if cmap is None:
        cmap = DIVERGING_CMAP if signed else HEAT_CMAP
    if isinstance(cmap, str):
        if cmap not in matplotlib.colormaps:
            raise ValueError(f"cmap must be the name of a matplotlib colour map, got {cmap!r}")
        cmap = matplotlib.colormaps[cmap]
    elif not isinstance(cmap, Colormap):
        raise TypeError(f"cmap must be a colour map name or a matplotlib Colormap, got {type(cmap).__name__}")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None, got {type(label).__name__}")
    p = f"p{percentile:g}"
    if label is None:
        label = f"scale: own {p} of |map|" if signed else f"scaled to own {p}"
    mappable = ScalarMappable(Normalize(-1.0 if signed else 0.0, 1.0), cmap)
    bar = fig.colorbar(mappable, ax=group[0] if len(group) == 1 else group,
                       **{"fraction": 0.046, "pad": 0.03, **colorbar_kw})
    if signed:
        bar.set_ticks([-1.0, 0.0, 1.0], labels=[f"-{p}", "0", f"+{p}"])
    else:
        bar.set_ticks([0.0, 1.0], labels=["min", f"≥{p}"])
    bar.set_label(label, fontsize=7, labelpad=1)
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    return bar


# --------------------------------------------------------------------------- scaling


def normalize_map(saliency: Any, percentile: float = 99.0, *, signed: bool = False) -> np.ndarray:
    """Clip a 2-D map at a percentile and scale it, as PAIR's visualisation does.

    Unsigned (PAIR ``VisualizeImageGrayscale``): ``clip((m - min) / (p - min), 0, 1)``
    with ``p`` the ``percentile`` of ``m``. Signed (PAIR ``VisualizeImageDiverging``):
    ``clip(m / p, -1, 1)`` with ``p`` the ``percentile`` of ``|m|``, so 0 stays 0.
    Clipping the top 1 % keeps a few extreme pixels from washing the map out.
    A constant map gives zeros. Display scaling only: the numbers of the map are
    not comparable across panels afterwards.
    """
    m = _chw(saliency, "saliency")
    if m.shape[0] != 1:
        raise ValueError(f"saliency must be a 2-D map (H, W); reduce channels first, got shape {m.shape}")
    m = m[0]
    percentile = _check_percentile(percentile)
    signed = check_flag(signed, "signed")
    if signed:
        span = float(np.percentile(np.abs(m), percentile))
        return np.clip(m / span, -1.0, 1.0) if span > 0 else np.zeros_like(m)
    lo = float(m.min())
    span = float(np.percentile(m, percentile)) - lo
    return np.clip((m - lo) / span, 0.0, 1.0) if span > 0 else np.zeros_like(m)


def _map2d(attribution: Any, reduction: str, percentile: float, signed: bool, smooth: float = 0.0) -> np.ndarray:
    """Reduce channels (a 2-D map is one channel), blur for display, scale: float64 (H, W)."""
    smooth = check_number(smooth, "smooth", low=0.0)
    m = reduce_channels(_chw(attribution, "attribution"), reduction)
    if smooth > 0:
        m = gaussian_blur(torch.from_numpy(m)[None, None], smooth)[0, 0].numpy()
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
    img = _photo(image)
    ax = _new_ax(ax)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    return _finish(ax, title)


def show_heatmap(attribution: Any, *, ax: Any = None, reduction: str = DEFAULT_REDUCTION,
                 percentile: float = 99.0, cmap: str = HEAT_CMAP, title: str | None = None,
                 colorbar: bool = True, smooth: float = 0.0) -> Any:
    """Show an attribution as an unsigned heatmap in [0, 1] (channels reduced, clipped at ``percentile``).

    ``reduction`` is passed to :func:`interp_helpers.maps.reduce_channels` (default
    ``"abs_sum"``, sum of |a_c|; ``"max_abs"``; ``"sum"`` would be signed: use
    :func:`show_diverging` for signed maps). ``smooth`` > 0 blurs the reduced map
    with a Gaussian of that many pixels (for display only, before scaling); say so
    in the figure when you use it. ``colorbar`` (default on) draws a slim bar
    labelled with the scale: the panel's minimum to its own ``percentile`` ("p99");
    for a group of panels pass ``colorbar=False`` and call :func:`scale_bar` once.
    """
    colorbar = check_flag(colorbar, "colorbar")
    heat = _map2d(attribution, reduction, percentile, False, smooth)
    ax = _new_ax(ax)
    ax.imshow(heat, cmap=cmap, vmin=0, vmax=1)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, signed=False, percentile=percentile)
    return _finish(ax, title)


def show_overlay(image: Any, attribution: Any, *, ax: Any = None, reduction: str = DEFAULT_REDUCTION,
                 percentile: float = 99.0, cmap: str = HEAT_CMAP, alpha: float = 0.8,
                 title: str | None = None, smooth: float = 0.0, colorbar: bool = True) -> Any:
    """Show an unsigned heatmap over a (grey-scaled) photo of the same height and width.

    The map's opacity is ``alpha`` times its value, so low-attribution regions
    show the photo and high-attribution regions show the colour. Pixel-level
    gradient maps are speckled and hard to read over a photo; ``smooth`` > 0
    blurs the reduced map with a Gaussian of that many pixels first (display
    only; say so in the figure). ``reduction`` and ``colorbar`` as in :func:`show_heatmap`.
    """
    colorbar = check_flag(colorbar, "colorbar")
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    img = _photo(image)
    heat = _map2d(attribution, reduction, percentile, False, smooth)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"image {img.shape[:2]} and attribution {heat.shape} must have the same height and width")
    import matplotlib

    ax = _new_ax(ax)
    grey = img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114])
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    rgba = matplotlib.colormaps[cmap](heat)
    rgba[..., 3] = alpha * heat
    ax.imshow(rgba)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, signed=False, percentile=percentile)
    return _finish(ax, title)


def show_diverging(attribution: Any, *, ax: Any = None, reduction: str = "sum", percentile: float = 99.0,
                   cmap: str = DIVERGING_CMAP, title: str | None = None, colorbar: bool = True,
                   smooth: float = 0.0) -> Any:
    """Show a signed map in [-1, 1]: red raises the class score, blue lowers it, white is 0.

    Channels are reduced by their signed sum by default (``reduction="sum"``, unlike
    the unsigned panels' ``"abs_sum"``: this panel shows signs; attributions are
    additive, so the sum is the attribution of the location). The scale is the
    ``percentile`` of |map| (PAIR's ``VisualizeImageDiverging``). ``smooth`` as in
    :func:`show_heatmap`. ``colorbar`` (default on) draws a slim bar from -p99 to
    +p99 of the panel's own |map|; for a group use :func:`scale_bar` with ``signed=True``.
    """
    colorbar = check_flag(colorbar, "colorbar")
    signed_map = _map2d(attribution, reduction, percentile, True, smooth)
    ax = _new_ax(ax)
    ax.imshow(signed_map, cmap=cmap, vmin=-1, vmax=1)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, signed=True, percentile=percentile)
    return _finish(ax, title)


def image_grid(nrows: int, ncols: int, *, size: float = 2.4, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None) -> tuple[Any, np.ndarray]:
    """A figure with an ``(nrows, ncols)`` array of blank axes, labelled by row and column.

    Returns ``(fig, axes)`` with ``axes`` always 2-D; fill it with the ``show_*``
    functions via ``ax=axes[r, c]``. Row labels go on the left, column labels on top.
    """
    nrows = check_positive_int(nrows, "nrows")
    ncols = check_positive_int(ncols, "ncols")
    size = check_number(size, "size", low=0.0, low_open=True)
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
        axes[0, c]._interp_column_label = label  # a panel title set later goes below it (see _finish)
    if title is not None:
        fig.suptitle(title, fontsize=11)
    return fig, axes
