"""Plots of attribution maps and of their evaluation; nothing here computes an attribution or a metric.

Maps are drawn as PAIR saliency's ``saliency/core/visualization.py`` does (Smilkov et al. 2017 show
SmoothGrad this way): channels reduced (:func:`~interp_helpers.maps.reduce_channels`; ``"abs_sum"`` for the
unsigned panels, the signed ``"sum"`` for :func:`show_diverging`), clipped at a percentile and scaled to
``[0, 1]`` or ``[-1, 1]`` (:func:`normalize_map`), each panel to its *own* percentile: colours compare pixels
within a panel, not across panels. A figure states that scale once, with one :func:`scale_bar` for its
panels (drawn with ``colorbar=False``). Every function takes a tensor or an array, ``(C, H, W)``, ``(H, W)``
or ``(1, C, H, W)`` (photos also ``(H, W, C)``); drawing functions take ``ax=`` and return what they drew on.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure, SubFigure
from scipy.ndimage import gaussian_filter

from ._common import check_choice, check_flag, check_int, check_number, check_positive
from .evaluation import CurveResult, RandomizationResult, check_results
from .maps import reduce_channels

#: Colour map of the unsigned panels and their scale bars.
HEAT_CMAP = "inferno"
#: Colour map of the signed panels: red > 0, white 0, blue < 0.
DIVERGING_CMAP = "RdBu_r"
#: The smallest font size of a figure's text, in points (legible at 100 dpi).
FONT = 9


def _chw(x: Any, name: str, *, photo: bool = False) -> np.ndarray:
    """A float64 copy ``(C, H, W)`` of ``(C, H, W)``, ``(H, W)``, ``(1, C, H, W)`` (or a photo's ``(H, W, C)``)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.double() if x.is_floating_point() else x).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind not in "iuf" or x.size == 0:
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype} and shape {x.shape}")
    a = x[0] if x.ndim == 4 and x.shape[0] == 1 else x[None] if x.ndim == 2 else x
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (C, H, W), (H, W) or (1, C, H, W), got {x.shape}")
    if photo and a.shape[-1] in (1, 3) and a.shape[0] not in (1, 3):
        a = np.transpose(a, (2, 0, 1))
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values")
    a = np.array(a, dtype=np.float64)  # a copy: the caller's array is never shared
    return a / 255.0 if photo and x.dtype.kind in "iu" else a


def _photo(image: Any) -> np.ndarray:
    """``(H, W, 3)`` or ``(H, W)`` in ``[0, 1]`` from a photo in ``[0, 1]`` or 0-255."""
    img = _chw(image, "image", photo=True)
    if img.shape[0] not in (1, 3):
        raise ValueError(f"image must have 1 or 3 channels, got shape {img.shape}")
    img = np.clip(np.transpose(img, (1, 2, 0)), 0.0, 1.0)
    return img[..., 0] if img.shape[-1] == 1 else img


def _new_ax(ax: Any, size: tuple[float, float] = (3.0, 3.0)) -> Axes:
    return plt.subplots(figsize=size, layout="constrained")[1] if ax is None else ax


def _finish(ax: Axes, title: str | None) -> Axes:
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:  # a column label from image_grid stays above the panel's own title
        column = getattr(ax, "_interp_column_label", None)
        ax.set_title(title if column is None else f"{column}\n{title}", fontsize=FONT)
    return ax


def scale_bar(fig: Any, axes: Any, *, cmap: Any = None, signed: bool = False, percentile: float = 99.0,
              label: str | None = None, **colorbar_kw: Any) -> Any:
    """ONE colour bar for a group of panels, each scaled to its own ``percentile``; returns the ``Colorbar``.

    Unsigned panels (:func:`show_heatmap`, :func:`show_overlay`) run from their minimum ("min") to their
    ``percentile`` ("≥p99"); signed ones (:func:`show_diverging`, ``signed=True``) from -p99 to +p99 of their
    |map|. ``axes`` is one ``Axes`` or a sequence/array of them on ``fig``; the bar takes its room from them.
    ``cmap`` defaults to the panels' (:data:`HEAT_CMAP` or :data:`DIVERGING_CMAP`); ``colorbar_kw`` go to
    ``fig.colorbar`` (e.g. ``shrink=0.6``, ``location="bottom"``). The per-panel bars of ``colorbar=True``
    are this bar for one axes.
    """
    if not isinstance(fig, (Figure, SubFigure)):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    group = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if not group or not all(isinstance(a, Axes) for a in group):
        raise TypeError(f"axes must be a matplotlib Axes or a non-empty sequence of them, got {axes!r}")
    if any(a.figure is not fig for a in group):
        raise ValueError("axes must all belong to fig")
    signed, percentile = check_flag(signed, "signed"), check_positive(percentile, "percentile", 100.0)
    cmap = (DIVERGING_CMAP if signed else HEAT_CMAP) if cmap is None else cmap
    if isinstance(cmap, str):
        if cmap not in matplotlib.colormaps:
            raise ValueError(f"cmap must be the name of a matplotlib colour map, got {cmap!r}")
        cmap = matplotlib.colormaps[cmap]
    elif not isinstance(cmap, Colormap):
        raise TypeError(f"cmap must be a colour map name or a matplotlib Colormap, got {type(cmap).__name__}")
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None, got {type(label).__name__}")
    p = f"p{percentile:g}"
    mappable = ScalarMappable(Normalize(-1.0 if signed else 0.0, 1.0), cmap)
    bar = fig.colorbar(mappable, ax=group[0] if len(group) == 1 else group,
                       **{"fraction": 0.046, "pad": 0.03, **colorbar_kw})
    if signed:
        bar.set_ticks([-1.0, 0.0, 1.0], labels=[f"-{p}", "0", f"+{p}"])
    else:
        bar.set_ticks([0.0, 1.0], labels=["min", f"≥{p}"])
    default = f"scale: own {p} of |map|" if signed else f"scaled to own {p}"
    bar.set_label(default if label is None else label, fontsize=FONT, labelpad=1)
    bar.ax.tick_params(labelsize=FONT, length=2, pad=1)
    return bar


def normalize_map(saliency: Any, percentile: float = 99.0, *, signed: bool = False) -> np.ndarray:
    """Clip a 2-D map at a percentile and scale it for display, as PAIR's visualisation does.

    Unsigned (``VisualizeImageGrayscale``): ``clip((m - min) / (p - min), 0, 1)`` with ``p`` the
    ``percentile`` of ``m``. Signed (``VisualizeImageDiverging``): ``clip(m / p, -1, 1)`` with ``p`` the
    ``percentile`` of ``|m|``. A constant map gives zeros.
    """
    m = _chw(saliency, "saliency")
    if m.shape[0] != 1:
        raise ValueError(f"saliency must be a 2-D map (H, W); reduce channels first, got shape {m.shape}")
    m, percentile = m[0], check_positive(percentile, "percentile", 100.0)
    if check_flag(signed, "signed"):
        span = float(np.percentile(np.abs(m), percentile))
        return np.clip(m / span, -1.0, 1.0) if span > 0 else np.zeros_like(m)
    span = float(np.percentile(m, percentile)) - float(m.min())
    return np.clip((m - m.min()) / span, 0.0, 1.0) if span > 0 else np.zeros_like(m)


def _panel(attribution: Any, reduction: str, percentile: float, signed: bool, smooth: float) -> np.ndarray:
    """Channels reduced, blurred for display by ``smooth`` pixels (scipy, edges repeated), scaled: ``(H, W)``."""
    smooth = check_number(smooth, "smooth", 0.0)
    m = reduce_channels(_chw(attribution, "attribution"), reduction)
    if smooth > 0:
        m = gaussian_filter(m, smooth, mode="nearest", truncate=3.0)
    return normalize_map(m, percentile, signed=signed)


def show_image(image: Any, *, ax: Any = None, title: str | None = None) -> Axes:
    """Show a photo, float in ``[0, 1]`` (values outside are clipped) or integer 0-255."""
    img = _photo(image)
    ax = _new_ax(ax)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    return _finish(ax, title)


def show_heatmap(attribution: Any, *, ax: Any = None, reduction: str = "abs_sum", percentile: float = 99.0,
                 cmap: str = HEAT_CMAP, title: str | None = None, colorbar: bool = True,
                 smooth: float = 0.0) -> Axes:
    """Show an attribution as an unsigned heatmap in ``[0, 1]``: channels reduced, clipped at ``percentile``.

    ``smooth`` > 0 blurs the reduced map by a Gaussian of that many pixels (display only; say so in the
    figure). ``colorbar`` draws this panel's :func:`scale_bar`; for a group of panels pass ``False`` and
    draw one bar for all.
    """
    colorbar = check_flag(colorbar, "colorbar")
    heat = _panel(attribution, reduction, percentile, False, smooth)
    ax = _new_ax(ax)
    ax.imshow(heat, cmap=cmap, vmin=0, vmax=1)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, percentile=percentile)
    return _finish(ax, title)


def show_overlay(image: Any, attribution: Any, *, ax: Any = None, reduction: str = "abs_sum",
                 percentile: float = 99.0, cmap: str = HEAT_CMAP, alpha: float = 0.8, title: str | None = None,
                 smooth: float = 0.0, colorbar: bool = True) -> Axes:
    """Show an unsigned heatmap over the grey-scaled photo, its opacity ``alpha`` times its value.

    Low-attribution regions show the photo, high ones the colour. ``smooth``, ``colorbar`` as in
    :func:`show_heatmap` (speckled pixel-level maps read better over a photo when smoothed).
    """
    colorbar = check_flag(colorbar, "colorbar")
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    img = _photo(image)
    heat = _panel(attribution, reduction, percentile, False, smooth)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"image {img.shape[:2]} and attribution {heat.shape} must have the same height and width")
    ax = _new_ax(ax)
    ax.imshow(img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114]), cmap="gray", vmin=0, vmax=1)
    rgba = matplotlib.colormaps[cmap](heat)
    rgba[..., 3] = alpha * heat
    ax.imshow(rgba)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, percentile=percentile)
    return _finish(ax, title)


def show_diverging(attribution: Any, *, ax: Any = None, reduction: str = "sum", percentile: float = 99.0,
                   cmap: str = DIVERGING_CMAP, title: str | None = None, colorbar: bool = True,
                   smooth: float = 0.0) -> Axes:
    """Show a signed map in ``[-1, 1]``: red raises the class score, blue lowers it, white is 0.

    Channels are summed with their signs by default; the scale is the ``percentile`` of |map| (PAIR's
    ``VisualizeImageDiverging``). ``smooth``, ``colorbar`` as in :func:`show_heatmap`.
    """
    colorbar = check_flag(colorbar, "colorbar")
    signed_map = _panel(attribution, reduction, percentile, True, smooth)
    ax = _new_ax(ax)
    ax.imshow(signed_map, cmap=cmap, vmin=-1, vmax=1)
    if colorbar:
        scale_bar(ax.figure, ax, cmap=cmap, signed=True, percentile=percentile)
    return _finish(ax, title)


def image_grid(nrows: int, ncols: int, *, size: float = 2.4, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None) -> tuple[Figure, np.ndarray]:
    """A figure with an ``(nrows, ncols)`` array of blank axes (always 2-D), labelled by row and column.

    Fill it with the ``show_*`` functions via ``ax=axes[r, c]``; row labels go on the left, column labels on top.
    """
    nrows, ncols = check_int(nrows, "nrows"), check_int(ncols, "ncols")
    size = check_positive(size, "size")
    for labels, name, n in ((row_labels, "row_labels", nrows), (col_labels, "col_labels", ncols)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} must have {n} entries, got {len(labels)}")
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        _finish(ax, None)
    for r, label in enumerate(row_labels or []):
        axes[r, 0].set_ylabel(label, fontsize=FONT)
    for c, label in enumerate(col_labels or []):
        axes[0, c].set_title(label, fontsize=FONT)
        axes[0, c]._interp_column_label = label  # a panel title set later goes below it (see _finish)
    if title is not None:
        fig.suptitle(title, fontsize=FONT + 2)
    return fig, axes


# --------------------------------------------------------------------------- evaluation results


def plot_curves(curves: Mapping[str, CurveResult], *, ax: Any = None, title: str | None = None,
                spread: bool = True) -> Axes:
    """Deletion or insertion curves of several maps: the mean over images, the legend giving each mean AUC.

    ``spread`` shades the range (min to max) across images.
    """
    check_results(curves, "curves", CurveResult)
    spread = check_flag(spread, "spread")
    kinds = {c.kind for c in curves.values()}
    if len(kinds) != 1:
        raise ValueError(f"curves must all be of one kind, got {sorted(kinds)}")
    ax = _new_ax(ax, (5.0, 3.6))
    for label, c in curves.items():
        (line,) = ax.plot(c.fractions, c.scores.mean(axis=0), label=f"{label} (AUC {c.auc.mean():.3f})", lw=1.6)
        if spread and len(c.scores) > 1:
            ax.fill_between(c.fractions, c.scores.min(axis=0), c.scores.max(axis=0), color=line.get_color(),
                            alpha=0.12, lw=0)
    deletion = kinds.pop() == "deletion"
    ax.set_xlabel("fraction of pixels " + ("deleted" if deletion else "inserted"))
    ax.set_ylabel("probability of the class")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=FONT, title_fontsize=FONT,
              title="lower AUC is better" if deletion else "higher AUC is better")
    if title is not None:
        ax.set_title(title, fontsize=FONT + 1)
    return ax


def plot_randomization(results: Mapping[str, RandomizationResult], *, metric: str = "spearman", ax: Any = None,
                       title: str | None = None) -> Axes:
    """Similarity to the original map along the randomization cascade, one line per method.

    Points are the mean over images (NaN left out), error bars their standard deviation; the x axis runs
    from the original model to the fully randomized one (each step randomizes its stage and those before).
    """
    check_results(results, "results", RandomizationResult)
    metric = check_choice(metric, "metric", ("spearman", "ssim"))
    steps = next(iter(results.values())).steps
    ax = _new_ax(ax, (max(5.0, 0.55 * len(steps) + 2), 3.6))
    x = np.arange(len(steps))
    for name, r in results.items():
        values = np.ma.masked_invalid(getattr(r, metric))  # NaN (a constant map) left out
        std = values.std(axis=1).filled(np.nan) if values.shape[1] > 1 else None
        ax.errorbar(x, values.mean(axis=1).filled(np.nan), yerr=std, marker="o", ms=3.5, lw=1.4, capsize=2, label=name)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, ["original", *[f"+ {s}" for s in steps[1:]]], rotation=45, ha="right", fontsize=FONT)
    ax.set_xlabel("stages randomized, from the logits down (cumulative)")
    ax.set_ylabel(("Spearman rank correlation" if metric == "spearman" else "SSIM") + " of |map|")
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=FONT)
    if title is not None:
        ax.set_title(title, fontsize=FONT + 1)
    return ax


def plot_cascade_maps(results: Mapping[str, RandomizationResult], *, image: int = 0,
                      steps: Sequence[str] | None = None, photo: Any = None, title: str | None = None,
                      size: float = 1.5) -> tuple[Figure, np.ndarray]:
    """The ``|map|`` of each method (rows) at each step of the cascade (columns) for one image.

    Adebayo et al. (2018), Fig. 2. ``steps`` picks the step names to show, in order (default all); ``photo``
    adds the photo as a first column. Add one :func:`scale_bar` for ``axes[:, 1:]`` (or ``axes``).
    """
    check_results(results, "results", RandomizationResult)
    first = next(iter(results.values()))
    n_images = first.maps.shape[1]
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not 0 <= image < n_images:
        raise ValueError(f"image must be an index in [0, {n_images}), got {image!r}")
    shown = list(first.steps) if steps is None else steps
    if isinstance(shown, str) or not isinstance(shown, Sequence) or not shown:
        raise ValueError(f"steps must be a non-empty sequence of step names, got {shown!r}")
    unknown = [s for s in shown if s not in first.steps]
    if unknown:
        raise ValueError(f"steps {unknown} are not steps of the results {list(first.steps)}")
    extra = int(photo is not None)
    cols = ["photo"] * extra + [s if s == first.steps[0] else f"+ {s}" for s in shown]
    fig, axes = image_grid(len(results), len(cols), size=size, col_labels=cols, title=title,
                           row_labels=[textwrap.fill(str(label), 14) for label in results])
    for row, r in enumerate(results.values()):
        if extra:
            show_image(photo, ax=axes[row, 0])
        for col, s in enumerate(shown):
            show_heatmap(r.maps[first.steps.index(s), image], ax=axes[row, col + extra], colorbar=False)
    return fig, axes
