"""Plots of TreeSHAP results -- plotting only; every number comes from :mod:`interp_helpers.tabular`.

Thin wrappers around ``shap.plots`` (beeswarm, bar, scatter, waterfall, force
with ``matplotlib=True``) plus a heatmap of mean |SHAP interaction values| and a
side-by-side bar chart of global importance measures. Each takes the result
objects of :mod:`interp_helpers.tabular`, never shows the figure itself, titles
it with the model and data set, and returns the ``Axes`` (or, for shap plots
that draw on a whole figure, the ``Figure``) so a notebook can compose and save it.
matplotlib, shap and pandas are imported by the functions that draw, so importing
this module loads none of them.
"""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tabular.treeshap import TreeShapResult, check_tree_shap_result
from ..validation import check_flag, check_number, check_positive_int, check_seed

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_force",
    "plot_importance_comparison",
    "plot_interaction_heatmap",
    "plot_waterfall",
]


def _check_ax(ax: Any) -> Axes | None:
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _check_feature(result: TreeShapResult, feature: Any, name: str = "feature") -> str:
    if not isinstance(feature, str) or feature not in result.feature_names:
        raise ValueError(f"{name} must be one of {list(result.feature_names)!r}, got {feature!r}")
    return feature


def _check_row(result: TreeShapResult, index: Any) -> int:
    n = len(result.values)
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not -n <= index < n:
        raise ValueError(f"index must be an integer row position in [0, {n}), got {index!r}")
    return int(index) % n


def _title(result: TreeShapResult, what: str, *, sep: str = ": ") -> str:
    where = f" on {result.dataset}" if result.dataset else ""
    return f"{result.model_name}{where}{sep}{what}"


def _row_label(result: TreeShapResult, row: int) -> str:
    return f"row {result.data.index[row]}"


@contextlib.contextmanager
def _numpy_global_seeded(seed: int) -> Iterator[None]:
    """Run shap plotting code that draws from NumPy's *global* RNG (the beeswarm's and the scatter's
    dot order, the beeswarm's tie-breaking) with ``seed``, and put the global state back afterwards,
    also on error: the figure is the same on every run and the caller's RNG is left as found."""
    state = np.random.get_state()
    np.random.seed(np.random.SeedSequence(seed).generate_state(4))  # any seed >= 0, 63-bit ones included
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _keep_interactive() -> Iterator[None]:
    """Undo the ``plt.ioff()`` that shap's waterfall and force plots call, also on error.

    Left off, later figures in a notebook would no longer display on their own.
    """
    import matplotlib.pyplot as plt

    was_interactive = plt.isinteractive()
    try:
        yield
    finally:
        if was_interactive and not plt.isinteractive():
            plt.ion()


def _hand_back_to_pyplot(fig: Figure) -> None:
    """Re-register a figure that shap created with interactive mode off, so it displays like any other.

    Closing and reopening it with ``plt.figure(fig)`` (matplotlib >= 3.10) lets the
    backend queue it; on older matplotlib the figure is left closed, and a
    notebook shows it when it is the value of a cell.
    """
    import matplotlib.pyplot as plt

    if not plt.isinteractive():
        return
    plt.close(fig)
    try:
        plt.figure(fig)
    except ValueError:
        pass


def plot_beeswarm(
    result: TreeShapResult, *, max_display: int = 10, ax: Axes | None = None, title: str | None = None,
    seed: int | None = 0,
) -> Axes:
    """SHAP summary (beeswarm): one dot per row and feature, x = SHAP value, colour = feature value.

    Features are ordered by mean |SHAP|; with ``max_display`` below the number of
    features the rest are summed into one row. shap shuffles the order in which the
    dots are drawn (and stacked) with NumPy's global RNG; here that draw uses ``seed``
    (``None``: a fresh one) and the global RNG is left as found.
    """
    result = check_tree_shap_result(result)
    max_display = check_positive_int(max_display, "max_display")
    seed = check_seed(seed)
    ax = _check_ax(ax)
    import matplotlib.pyplot as plt
    import shap

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * min(max_display, len(result.feature_names)) + 1.5))
    with _numpy_global_seeded(seed):
        shap.plots.beeswarm(result.to_explanation(), max_display=max_display, ax=ax, plot_size=None, show=False)
    ax.set_title(title or _title(result, "SHAP values per row"))
    return ax


def plot_bar(
    result: TreeShapResult, *, max_display: int = 10, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Global importance as mean |SHAP value| per feature (``shap.plots.bar``)."""
    result = check_tree_shap_result(result)
    max_display = check_positive_int(max_display, "max_display")
    ax = _check_ax(ax)
    import matplotlib.pyplot as plt
    import shap

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.4 * min(max_display, len(result.feature_names)) + 1.5))
    shap.plots.bar(result.to_explanation(), max_display=max_display, ax=ax, show=False)
    ax.set_title(title or _title(result, "mean |SHAP value|"))
    return ax


def plot_dependence(
    result: TreeShapResult,
    feature: str,
    *,
    color_by: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    seed: int | None = 0,
) -> Axes:
    """SHAP dependence plot (``shap.plots.scatter``): SHAP value of ``feature`` against its value.

    ``color_by`` names the feature whose value colours the dots -- pass the
    partner from :func:`interp_helpers.tabular.strongest_interactions` to show
    the strongest interaction; ``None`` draws plain dots. shap shuffles the drawing
    order of the dots with NumPy's global RNG; here that draw uses ``seed`` and the
    global RNG is left as found.
    """
    result = check_tree_shap_result(result)
    feature = _check_feature(result, feature)
    if color_by is not None:
        color_by = _check_feature(result, color_by, "color_by")
    seed = check_seed(seed)
    ax = _check_ax(ax)
    import matplotlib.pyplot as plt
    import shap

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    explanation = result.to_explanation()
    color = explanation[:, color_by] if color_by is not None else "#1E88E5"
    with _numpy_global_seeded(seed):
        shap.plots.scatter(explanation[:, feature], color=color, ax=ax, show=False)
    suffix = f", coloured by {color_by}" if color_by is not None else ""
    ax.set_title(title or _title(result, f"dependence on {feature}{suffix}", sep="\n"))
    return ax


def plot_waterfall(
    result: TreeShapResult, index: int, *, max_display: int = 10, title: str | None = None
) -> Figure:
    """Waterfall for one row: from the expected value, feature by feature, to the prediction.

    ``shap.plots.waterfall`` draws on the current figure, so this opens a new one and returns it.
    """
    result = check_tree_shap_result(result)
    row = _check_row(result, index)
    max_display = check_positive_int(max_display, "max_display")
    import matplotlib.pyplot as plt
    import shap

    fig = plt.figure()
    with _keep_interactive():
        shap.plots.waterfall(result.to_explanation()[row], max_display=max_display, show=False)
    fig.axes[0].set_title(title or _title(result, f"waterfall for {_row_label(result, row)}"))
    fig.tight_layout()
    return fig


def plot_force(
    result: TreeShapResult,
    index: int,
    *,
    figsize: tuple[float, float] = (16, 3.5),
    contribution_threshold: float = 0.05,
    title: str | None = None,
) -> Figure:
    """Static force plot for one row (``shap.plots.force(..., matplotlib=True)``); returns its figure.

    Features pushing the prediction up are red, down blue; labels are drawn for
    contributions above ``contribution_threshold`` of the total.
    """
    result = check_tree_shap_result(result)
    row = _check_row(result, index)
    import shap
    from matplotlib.transforms import blended_transform_factory

    contribution_threshold = check_number(contribution_threshold, "contribution_threshold", low=0.0, high=1.0)
    data = result.data.iloc[row]
    with _keep_interactive():
        fig = shap.plots.force(
            result.expected_value,
            result.values[row],
            features=np.round(data.to_numpy(), 3),
            feature_names=list(result.feature_names),
            matplotlib=True,
            show=False,
            figsize=figsize,
            contribution_threshold=contribution_threshold,
        )
    _hand_back_to_pyplot(fig)
    # shap writes "higher <- -> lower" and "base value" above the axes (data y up to 0.43; the axes
    # stop at y=0.15), so the title goes above those, at data y=0.5
    ax = fig.axes[0]
    ax.text(
        0.5,
        0.5,
        title or _title(result, f"force plot for {_row_label(result, row)}"),
        transform=blended_transform_factory(ax.transAxes, ax.transData),
        ha="center",
        va="bottom",
        fontsize=13,
    )
    return fig


def plot_interaction_heatmap(
    matrix: pd.DataFrame,
    *,
    ax: Axes | None = None,
    annotate: bool = True,
    title: str | None = None,
    model_name: str = "CatBoostRegressor",
    dataset: str = "",
) -> Axes:
    """Heatmap of a feature x feature matrix of mean |SHAP interaction values|.

    ``matrix`` is what :func:`interp_helpers.tabular.mean_abs_interactions`
    returns. The diagonal (main effects) is usually much larger than the
    off-diagonal interactions, so it is hatched out and the colour scale is set
    by the off-diagonal entries; ``annotate`` writes each value in its cell.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"matrix must be a pandas DataFrame (from mean_abs_interactions), got {type(matrix).__name__}")
    if matrix.shape[0] != matrix.shape[1] or list(matrix.index) != list(matrix.columns) or matrix.shape[0] < 2:
        raise ValueError(f"matrix must be square with the same feature labels on both axes, got shape {matrix.shape}")
    annotate = check_flag(annotate, "annotate")
    ax = _check_ax(ax)
    values = matrix.to_numpy(dtype=np.float64)
    d = values.shape[0]
    off = values.copy()
    np.fill_diagonal(off, np.nan)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * d + 2.5, 0.6 * d + 1.5))
    image = ax.imshow(off, cmap="viridis", vmin=0, vmax=np.nanmax(off))
    for i in range(d):
        ax.add_patch(
            plt.Rectangle((i - 0.5, i - 0.5), 1, 1, facecolor="whitesmoke", edgecolor="lightgrey", hatch="//")
        )
    ax.set_xticks(range(d), labels=list(matrix.columns), rotation=90)
    ax.set_yticks(range(d), labels=list(matrix.index))
    if annotate:
        threshold = 0.6 * np.nanmax(off)
        for i in range(d):
            for j in range(d):
                color = "black" if i == j or off[i, j] > threshold else "white"
                ax.text(j, i, f"{values[i, j]:.2g}", ha="center", va="center", fontsize=9, color=color)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="mean |SHAP interaction value|")
    where = f" on {dataset}" if dataset else ""
    ax.set_title(title or f"{model_name}{where}\nmean |SHAP interaction value| (diagonal: main effect)")
    return ax


def plot_importance_comparison(
    table: pd.DataFrame,
    *,
    columns: Sequence[str] = ("shap_share", "pvc_share", "permutation_share"),
    labels: Sequence[str] = ("mean |SHAP|", "PredictionValuesChange", "permutation (RMSE increase)"),
    ax: Axes | None = None,
    title: str | None = None,
    model_name: str = "CatBoostRegressor",
    dataset: str = "",
) -> Axes:
    """Grouped horizontal bars: each importance measure as a share (%) of its total, per feature.

    ``table`` is what :func:`interp_helpers.tabular.importance_table` returns;
    features keep the table's order (largest mean |SHAP| on top).
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame (from importance_table), got {type(table).__name__}")
    columns, labels = list(columns), list(labels)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing!r}; it has {list(table.columns)!r}")
    if len(labels) != len(columns):
        raise ValueError(f"labels must name each of the {len(columns)} columns, got {len(labels)} labels")
    ax = _check_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.45 * len(table) + 1.5))
    y = np.arange(len(table))
    height = 0.8 / len(columns)
    for k, (column, label) in enumerate(zip(columns, labels)):
        ax.barh(y + (k - (len(columns) - 1) / 2) * height, table[column].to_numpy(), height=height, label=label)
    ax.set_yticks(y, labels=[str(i) for i in table.index])
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of the measure's total (%)")
    ax.legend(loc="lower right", fontsize=8)
    where = f" on {dataset}" if dataset else ""
    ax.set_title(title or f"{model_name}{where}: three global importance measures")
    return ax
