"""Tests for interp_helpers.tree_plots: what each plot draws, its title, seeded dot order that leaves NumPy's
global RNG as found, interactive mode kept, and bad arguments."""
from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import interp_helpers as ih
from interp_helpers import tree_plots, trees


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fit() -> trees.CatBoostFit:
    X, y = ih.load_boston()
    return trees.train_catboost(X, y, iterations=30, depth=4, learning_rate=0.3, thread_count=1,
                                dataset="Boston housing")


@pytest.fixture(scope="module")
def result(fit) -> trees.TreeShapResult:
    return trees.tree_shap(fit.model, fit.X_test.iloc[:40], dataset="Boston housing")


def _texts(fig: Figure) -> str:
    return " | ".join([ax.get_title() for ax in fig.axes] + [t.get_text() for ax in fig.axes for t in ax.texts])


def test_axes_plots_return_axes_with_titles(result):
    partner = trees.strongest_interactions(result)["LSTAT"]
    _, axes = plt.subplots(1, 3)
    drawn = [
        tree_plots.plot_beeswarm(result, max_display=13, ax=axes[0]),
        tree_plots.plot_bar(result, ax=axes[1]),
        tree_plots.plot_dependence(result, "LSTAT", color_by=partner, ax=axes[2]),
    ]
    for ax, expected in zip(drawn, axes):
        assert ax is expected
        assert "CatBoostRegressor on Boston housing" in ax.get_title()
    assert f"dependence on LSTAT, coloured by {partner}" in axes[2].get_title()
    # the beeswarm draws one dot per row for each of the 13 features; the scatter one per row
    assert sum(len(c.get_offsets()) for c in axes[0].collections) == 40 * 13
    dots = np.concatenate([c.get_offsets() for c in axes[2].collections if len(c.get_offsets())])
    lstat = result.feature_names.index("LSTAT")
    assert sorted(map(tuple, dots)) == sorted(zip(result.data["LSTAT"], result.values[:, lstat]))
    standalone = tree_plots.plot_bar(result, max_display=3, title="custom")
    assert isinstance(standalone, Axes) and standalone.get_title() == "custom"
    assert len(standalone.patches) == 3  # two features and the sum of the other eleven


def test_beeswarm_and_dependence_are_seeded_and_leave_the_global_rng_as_found(result):
    # shap draws the dot order from NumPy's global RNG; the helpers seed that draw and restore the state
    def offsets(plot, seed):
        fig, ax = plt.subplots()
        try:
            plot(result, ax=ax, seed=seed)
            return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
        finally:
            plt.close(fig)

    np.random.seed(123)
    state = np.random.get_state()
    for plot in (functools.partial(tree_plots.plot_beeswarm, max_display=13),
                 functools.partial(tree_plots.plot_dependence, feature="LSTAT")):
        first, again, other = offsets(plot, 0), offsets(plot, 0), offsets(plot, 1)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)  # the seed is what fixes the order
        assert offsets(plot, None).shape == first.shape and offsets(plot, 2**62).shape == first.shape
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None, got -1"):
        tree_plots.plot_beeswarm(result, seed=-1)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None, got 1.5"):
        tree_plots.plot_dependence(result, "LSTAT", seed=1.5)


def test_figure_plots_return_figures_and_keep_interactive_mode(result):
    plt.ion()
    try:
        waterfall = tree_plots.plot_waterfall(result, 3)
        force = tree_plots.plot_force(result, -1, title="my force plot")
        assert plt.isinteractive()
        # both figures stay managed by pyplot (the force figure is closed and reopened to be shown)
        assert force.number in plt.get_fignums() and waterfall.number in plt.get_fignums()
    finally:
        plt.ioff()
    assert isinstance(waterfall, Figure) and isinstance(force, Figure)
    assert f"waterfall for row {result.data.index[3]}" in _texts(waterfall) and "Boston housing" in _texts(waterfall)
    assert "my force plot" in _texts(force)
    default = tree_plots.plot_force(result, 0)
    assert f"CatBoostRegressor on Boston housing: force plot for row {result.data.index[0]}" in _texts(default)


def test_heatmap_and_importance_plot(fit, result):
    matrix = trees.mean_abs_interactions(result)
    ax = tree_plots.plot_interaction_heatmap(matrix, dataset="Boston housing")
    assert "Boston housing" in ax.get_title()
    image = ax.images[0].get_array()
    assert np.ma.is_masked(image[0, 0]) or np.isnan(image[0, 0])  # diagonal left out of the colour scale
    assert image[0, 1] == pytest.approx(matrix.iloc[0, 1])
    assert ax.images[0].get_clim() == pytest.approx((0, matrix.to_numpy()[~np.eye(13, dtype=bool)].max()))
    assert len(ax.texts) == 13 * 13 and ax.texts[1].get_text() == f"{matrix.iloc[0, 1]:.2g}"
    table = trees.importance_table(fit.model, fit.X_test.iloc[:40], fit.y_test.iloc[:40], result=result, n_repeats=2)
    ax = tree_plots.plot_importance_comparison(table, dataset="Boston housing")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    assert len(ax.patches) == 3 * 13
    widths = sorted(p.get_width() for p in ax.patches[:13])  # the first measure: mean |SHAP| shares
    np.testing.assert_allclose(widths, sorted(table["shap_share"]))
    assert ax.get_title() == "Boston housing: three global importance measures"


def test_plots_reject_bad_arguments(result):
    with pytest.raises(ValueError, match=r"feature must be one of .*got 'nope'"):
        tree_plots.plot_dependence(result, "nope")
    with pytest.raises(ValueError, match=r"color_by must be one of"):
        tree_plots.plot_dependence(result, "RM", color_by="nope")
    with pytest.raises(ValueError, match=r"index must be an integer row position in \[0, 40\), got 40"):
        tree_plots.plot_waterfall(result, 40)
    with pytest.raises(ValueError, match=r"index must be an integer row position"):
        tree_plots.plot_force(result, 1.5)
    with pytest.raises(ValueError, match=r"index must be an integer row position"):
        tree_plots.plot_force(result, True)
    with pytest.raises(TypeError, match=r"ax must be a matplotlib Axes or None, got str"):
        tree_plots.plot_beeswarm(result, ax="ax")
    with pytest.raises(ValueError, match=r"max_display must be an integer >= 1, got 0"):
        tree_plots.plot_bar(result, max_display=0)
    with pytest.raises(ValueError, match=r"max_display must be an integer >= 1, got 0"):
        tree_plots.plot_waterfall(result, 0, max_display=0)
    for plot in (tree_plots.plot_beeswarm, tree_plots.plot_bar):
        with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
            plot(result.values)
    for plot in (tree_plots.plot_waterfall, tree_plots.plot_force):
        with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
            plot("result", 0)
    with pytest.raises(TypeError, match=r"matrix must be a pandas DataFrame"):
        tree_plots.plot_interaction_heatmap(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"matrix must be square"):
        tree_plots.plot_interaction_heatmap(pd.DataFrame(np.zeros((2, 3))))
    with pytest.raises(TypeError, match=r"table must be a pandas DataFrame"):
        tree_plots.plot_importance_comparison("table")
    with pytest.raises(ValueError, match=r"table is missing columns \['pvc_share'\]"):
        tree_plots.plot_importance_comparison(pd.DataFrame({"shap_share": [1.0], "permutation_share": [1.0]}))
