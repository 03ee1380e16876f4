"""Plots for :mod:`interp_helpers.metrics` results (faithfulness curves, sanity checks); nothing here computes a metric or an attribution.

* :func:`plot_curves` -- deletion or insertion curves of several methods (mean over
  images, with the spread across images shaded);
* :func:`plot_randomization` -- similarity to the original map along the cascade of
  :func:`~interp_helpers.metrics.sanity.randomization_test`, one line per method;
* :func:`plot_cascade_maps` -- the maps themselves along the cascade, one row per
  method (the figure of Adebayo et al. 2018, Fig. 2).

Each function takes ``ax=`` (or returns a new figure) and returns what it drew
on, so that a notebook can compose figures. Importing this module loads neither
matplotlib nor the metrics (their result classes are imported by the functions
that check them) and changes no matplotlib settings.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..validation import check_choice, check_flag, check_labelled
from .maps import image_grid, show_heatmap, show_image

if TYPE_CHECKING:
    from ..metrics.faithfulness import CurveResult
    from ..metrics.sanity import RandomizationResult

__all__ = ["plot_cascade_maps", "plot_curves", "plot_randomization"]

_METRICS = ("spearman", "ssim")
_METRIC_LABELS = {"spearman": "Spearman rank correlation of |map|", "ssim": "SSIM of |map|"}


def _new_ax(ax: Any, size: tuple[float, float] = (5.0, 3.6)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _check_mapping(results: Any, name: str, kind: str) -> Mapping[str, Any]:
    """``results`` if it is a non-empty mapping label -> ``kind`` (a result class of interp_helpers.metrics)."""
    from .. import metrics

    return check_labelled(results, name, getattr(metrics, kind))


def plot_curves(
    curves: Mapping[str, CurveResult],
    *,
    ax: Any = None,
    title: str | None = None,
    spread: bool = True,
) -> Any:
    """Draw deletion or insertion curves: mean probability over images per method.

    Args:
        curves: label -> :class:`CurveResult`, all of one kind (deletion or insertion).
        ax: axes to draw on (default: a new figure).
        title: axes title.
        spread: shade the range (min to max) across images.

    Returns:
        The axes. The legend gives each method's mean AUC over images.
    """
    curves = _check_mapping(curves, "curves", "CurveResult")
    spread = check_flag(spread, "spread")
    kinds = {c.kind for c in curves.values()}
    if len(kinds) != 1:
        raise ValueError(f"curves must all be of one kind, got {sorted(kinds)}")
    ax = _new_ax(ax)
    for label, c in curves.items():
        mean = c.scores.mean(axis=0)
        (line,) = ax.plot(c.fractions, mean, label=f"{label} (AUC {c.auc.mean():.3f})", lw=1.6)
        if spread and c.scores.shape[0] > 1:
            ax.fill_between(c.fractions, c.scores.min(axis=0), c.scores.max(axis=0), color=line.get_color(),
                            alpha=0.12, lw=0)
    kind = kinds.pop()
    ax.set_xlabel("fraction of pixels " + ("deleted" if kind == "deletion" else "inserted"))
    ax.set_ylabel("probability of the class")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, title=("lower AUC is better" if kind == "deletion" else "higher AUC is better"),
              title_fontsize=9)
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax


def plot_randomization(
    results: Mapping[str, RandomizationResult],
    *,
    metric: str = "spearman",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Similarity to the original map along the randomization cascade, one line per method.

    Points are the mean over images, error bars their standard deviation. The
    x axis lists the steps from the original model to the fully randomized one
    (each step randomizes its stage *and all those to its left*).

    Args:
        results: label -> :class:`RandomizationResult`, all over the same steps.
        metric: ``"spearman"`` or ``"ssim"``.
        ax: axes to draw on (default: a new figure).
        title: axes title.
    """
    results = _check_mapping(results, "results", "RandomizationResult")
    metric = check_choice(metric, "metric", _METRICS)
    steps = next(iter(results.values())).steps
    for label, r in results.items():
        if r.steps != steps:
            raise ValueError(f"results[{label!r}] has steps {list(r.steps)}, expected {list(steps)}")
    ax = _new_ax(ax, size=(max(5.0, 0.55 * len(steps) + 2), 3.6))
    x = np.arange(len(steps))
    for label, r in results.items():
        values = getattr(r, metric)
        mean = np.nanmean(values, axis=1) if np.isfinite(values).any() else np.full(len(steps), np.nan)
        std = np.nanstd(values, axis=1) if values.shape[1] > 1 else None
        ax.errorbar(x, mean, yerr=std, marker="o", ms=3.5, lw=1.4, capsize=2, label=label)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(["original", *[f"+ {s}" for s in steps[1:]]], rotation=45, ha="right", fontsize=9)
    ax.set_xlabel("stages randomized, from the logits down (cumulative)")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax


def plot_cascade_maps(
    results: Mapping[str, RandomizationResult],
    *,
    image: int = 0,
    steps: Sequence[str] | None = None,
    photo: Any = None,
    title: str | None = None,
    size: float = 1.5,
) -> tuple[Any, np.ndarray]:
    """The ``|map|`` of each method at each step of the cascade for one image.

    Args:
        results: label -> :class:`RandomizationResult` (one row each), same steps.
        image: which image of the results to show.
        steps: the step names to show, in order (default: all).
        photo: optionally the photo, ``(H, W, 3)`` in [0, 1], shown in an extra first column.
        title: figure title.
        size: inches per panel.

    Returns:
        ``(fig, axes)``.
    """
    results = _check_mapping(results, "results", "RandomizationResult")
    shown, steps = steps, next(iter(results.values())).steps
    n_images = next(iter(results.values())).maps.shape[1]
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not 0 <= image < n_images:
        raise ValueError(f"image must be an index in [0, {n_images}), got {image!r}")
    for label, r in results.items():
        if r.steps != steps:
            raise ValueError(f"results[{label!r}] has steps {list(r.steps)}, expected {list(steps)}")
    if shown is None:
        shown = list(steps)
    if isinstance(shown, str) or not isinstance(shown, Sequence) or not shown:
        raise ValueError(f"steps must be a non-empty sequence of step names, got {shown!r}")
    unknown = [s for s in shown if s not in steps]
    if unknown:
        raise ValueError(f"steps {unknown} are not steps of the results {list(steps)}")
    index = [steps.index(s) for s in shown]
    extra = 1 if photo is not None else 0
    cols = (["photo"] if extra else []) + [s if s == steps[0] else f"+ {s}" for s in shown]
    rows = [textwrap.fill(str(label), 14) for label in results]
    fig, axes = image_grid(len(results), len(index) + extra, size=size, row_labels=rows,
                           col_labels=cols, title=title)
    for row, r in enumerate(results.values()):
        if extra:
            show_image(photo, ax=axes[row, 0])
        for col, k in enumerate(index):
            show_heatmap(r.maps[k, image], ax=axes[row, col + extra], reduction="abs_sum", colorbar=False)
    for ax in axes[0]:
        ax.title.set_fontsize(9)
    return fig, axes
