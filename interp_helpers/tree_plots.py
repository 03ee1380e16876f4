"""Plots of TreeSHAP results (notebook 04); every number comes from :mod:`interp_helpers.trees`.

Thin wrappers of ``shap.plots`` (beeswarm, bar, scatter, waterfall, force) plus a heatmap of mean |SHAP
interaction values| and a bar chart of three global importance measures. Each titles the plot with the model
and data set, never shows it, and returns the ``Axes`` (or, where shap draws a whole figure, the ``Figure``).
"""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ._common import DEFAULT_SEED, check_ax, check_int, check_seed
from .trees import TreeShapResult, check_result

#: The columns of ``importance_table`` that :func:`plot_importance_comparison` draws, and their labels.
_SHARES = {"shap_share": "mean |SHAP|", "pvc_share": "PredictionValuesChange",
           "permutation_share": "permutation (RMSE increase)"}


def _check_feature(result: TreeShapResult, feature: str, name: str) -> str:
    if not isinstance(feature, str) or feature not in result.feature_names:
        raise ValueError(f"{name} must be one of {list(result.feature_names)!r}, got {feature!r}")
    return feature


def _check_row(result: TreeShapResult, index: int) -> int:
    n = len(result.values)
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not -n <= index < n:
        raise ValueError(f"index must be an integer row position in [0, {n}), got {index!r}")
    return int(index) % n


def _title(result: TreeShapResult, what: str, sep: str = ": ") -> str:
    return f"{result.model_name}{f' on {result.dataset}' if result.dataset else ''}{sep}{what}"


@contextlib.contextmanager
def _numpy_global_seeded(seed: int) -> Iterator[None]:
    """Seed NumPy's *global* RNG, which shap's beeswarm and scatter draw their dot order from, and put the
    caller's state back afterwards, also on error: the figure is the same on every run."""
    state = np.random.get_state()
    np.random.seed(np.random.SeedSequence(seed).generate_state(4))  # any seed >= 0, 63-bit ones included
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _keep_interactive() -> Iterator[None]:
    """Undo the ``plt.ioff()`` of shap's waterfall and force plots, also on error, so that later figures
    in a notebook still display on their own."""
    was_interactive = plt.isinteractive()
    try:
        yield
    finally:
        if was_interactive and not plt.isinteractive():
            plt.ion()


def plot_beeswarm(result: TreeShapResult, *, max_display: int = 10, ax: Axes | None = None, title: str | None = None,
                  seed: int | None = DEFAULT_SEED) -> Axes:
    """SHAP summary (``shap.plots.beeswarm``): a dot per row and feature, x = SHAP value, colour = feature value.

    Features are ordered by mean |SHAP|; beyond ``max_display`` the rest are summed into one row. shap shuffles
    the drawing order of the dots with NumPy's global RNG: here seeded by ``seed``, and left as found.
    """
    result, max_display, ax = check_result(result), check_int(max_display, "max_display"), check_ax(ax)
    seed = check_seed(seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * min(max_display, len(result.feature_names)) + 1.5))
    with _numpy_global_seeded(seed):
        shap.plots.beeswarm(result.to_explanation(), max_display=max_display, ax=ax, plot_size=None, show=False)
    ax.set_title(title or _title(result, "SHAP values per row"))
    return ax


def plot_bar(result: TreeShapResult, *, max_display: int = 10, ax: Axes | None = None,
             title: str | None = None) -> Axes:
    """Global importance as mean |SHAP value| per feature (``shap.plots.bar``)."""
    result, max_display, ax = check_result(result), check_int(max_display, "max_display"), check_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.4 * min(max_display, len(result.feature_names)) + 1.5))
    shap.plots.bar(result.to_explanation(), max_display=max_display, ax=ax, show=False)
    ax.set_title(title or _title(result, "mean |SHAP value|"))
    return ax


def plot_dependence(result: TreeShapResult, feature: str, *, color_by: str | None = None, ax: Axes | None = None,
                    title: str | None = None, seed: int | None = DEFAULT_SEED) -> Axes:
    """SHAP dependence plot (``shap.plots.scatter``): the SHAP value of ``feature`` against its value.

    ``color_by`` names the feature whose value colours the dots (e.g. the partner from
    ``strongest_interactions``); ``None`` draws plain dots. The dot order is seeded as in :func:`plot_beeswarm`.
    """
    result, ax, seed = check_result(result), check_ax(ax), check_seed(seed)
    feature = _check_feature(result, feature, "feature")
    if color_by is not None:
        color_by = _check_feature(result, color_by, "color_by")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    explanation = result.to_explanation()
    color = explanation[:, color_by] if color_by is not None else "#1E88E5"
    with _numpy_global_seeded(seed):
        shap.plots.scatter(explanation[:, feature], color=color, ax=ax, show=False)
    suffix = f", coloured by {color_by}" if color_by is not None else ""
    ax.set_title(title or _title(result, f"dependence on {feature}{suffix}", sep="\n"))
    return ax


def plot_waterfall(result: TreeShapResult, index: int, *, max_display: int = 10, title: str | None = None) -> Figure:
    """Waterfall for row ``index`` (``shap.plots.waterfall``): from the expected value, feature by feature, to
    the prediction. shap draws on the current figure, so this opens a new one and returns it."""
    result = check_result(result)
    row, max_display = _check_row(result, index), check_int(max_display, "max_display")
    fig = plt.figure()
    with _keep_interactive():
        shap.plots.waterfall(result.to_explanation()[row], max_display=max_display, show=False)
    fig.axes[0].set_title(title or _title(result, f"waterfall for row {result.data.index[row]}"))
    fig.tight_layout()
    return fig


def plot_force(result: TreeShapResult, index: int, *, figsize: tuple[float, float] = (16, 3.5),
               title: str | None = None) -> Figure:
    """Static force plot for row ``index`` (``shap.plots.force(..., matplotlib=True)``); returns its figure.

    Features pushing the prediction up are red, down blue; labels are drawn for contributions above 5 % of
    the total.
    """
    result = check_result(result)
    row = _check_row(result, index)
    with _keep_interactive():
        fig = shap.plots.force(result.expected_value, result.values[row],
                               features=np.round(result.data.iloc[row].to_numpy(), 3),
                               feature_names=list(result.feature_names), matplotlib=True, show=False, figsize=figsize)
    if plt.isinteractive():  # shap made the figure with interactive mode off: hand it back to pyplot to display
        plt.close(fig)
        with contextlib.suppress(ValueError):  # matplotlib < 3.10 cannot reopen it; a notebook still shows it
            plt.figure(fig)
    # shap writes "higher <- -> lower" and "base value" above the axes (data y up to 0.43): the title goes above
    ax = fig.axes[0]
    ax.text(0.5, 0.5, title or _title(result, f"force plot for row {result.data.index[row]}"),
            transform=blended_transform_factory(ax.transAxes, ax.transData), ha="center", va="bottom", fontsize=13)
    return fig


def plot_interaction_heatmap(matrix: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                             dataset: str = "") -> Axes:
    """Heatmap of the mean |SHAP interaction values| that ``mean_abs_interactions`` returns, values written in.

    The diagonal (main effects) is usually much larger than the interactions, so it is hatched out and the
    colour scale is set by the off-diagonal entries.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"matrix must be a pandas DataFrame (from mean_abs_interactions), got {type(matrix).__name__}")
    if matrix.shape[0] != matrix.shape[1] or list(matrix.index) != list(matrix.columns) or matrix.shape[0] < 2:
        raise ValueError(f"matrix must be square with the same feature labels on both axes, got shape {matrix.shape}")
    ax = check_ax(ax)
    values = matrix.to_numpy(dtype=np.float64)
    d = values.shape[0]
    off = values.copy()
    np.fill_diagonal(off, np.nan)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * d + 2.5, 0.6 * d + 1.5))
    image = ax.imshow(off, cmap="viridis", vmin=0, vmax=np.nanmax(off))
    for i in range(d):
        ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, facecolor="whitesmoke", edgecolor="lightgrey", hatch="//"))
    ax.set_xticks(range(d), labels=list(matrix.columns), rotation=90)
    ax.set_yticks(range(d), labels=list(matrix.index))
    for i in range(d):
        for j in range(d):
            color = "black" if i == j or off[i, j] > 0.6 * np.nanmax(off) else "white"
            ax.text(j, i, f"{values[i, j]:.2g}", ha="center", va="center", fontsize=9, color=color)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="mean |SHAP interaction value|")
    where = f"{dataset}\n" if dataset else ""
    ax.set_title(title or f"{where}mean |SHAP interaction value| (diagonal: main effect)")
    return ax


def plot_importance_comparison(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
                               dataset: str = "") -> Axes:
    """Grouped horizontal bars: mean |SHAP|, PredictionValuesChange and permutation importance per feature, each
    as a share (%) of its total, from ``importance_table`` (features in its order, largest mean |SHAP| on top)."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame (from importance_table), got {type(table).__name__}")
    missing = [c for c in _SHARES if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing!r}; it has {list(table.columns)!r}")
    ax = check_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.45 * len(table) + 1.5))
    y, height = np.arange(len(table)), 0.8 / len(_SHARES)
    for k, (column, label) in enumerate(_SHARES.items()):
        ax.barh(y + (k - (len(_SHARES) - 1) / 2) * height, table[column].to_numpy(), height=height, label=label)
    ax.set_yticks(y, labels=[str(i) for i in table.index])
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of the measure's total (%)")
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(title or f"{f'{dataset}: ' if dataset else ''}three global importance measures")
    return ax
