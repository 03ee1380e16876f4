"""Tests for interp_helpers.tabular (CatBoost + TreeSHAP) and interp_helpers.plotting.tabular.

Known answers: data where one feature alone sets the target; a purely linear
target that least squares fits exactly; stumps (depth-1 trees), whose model is
additive so SHAP interactions vanish and each SHAP value depends on its own
feature only; a pure product target whose strongest interaction is known.
Cross-checks: shap vs CatBoost's native ShapValues, additivity, and an
independent brute-force enumeration of the Shapley formula, all to 1e-6.
"""
from __future__ import annotations

import dataclasses
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostRegressor
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import interp_helpers as ih
import interp_helpers.tabular as tab
import interp_helpers.plotting.tabular as tplots

TOL = 1e-6
FAST = {"iterations": 60, "depth": 4, "learning_rate": 0.2}


def _uniform_frame(n: int, columns: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.uniform(-1.0, 1.0, size=(n, len(columns))), columns=columns)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def boston_fit() -> tab.CatBoostFit:
    X, y = ih.load_boston()
    # depth 6: the oblivious trees repeat features across levels, the hard case for TreeSHAP
    return tab.train_catboost(X, y, seed=0, iterations=40, depth=6, learning_rate=0.2, dataset="Boston housing")


@pytest.fixture(scope="module")
def boston_shap(boston_fit) -> tab.TreeShapResult:
    return tab.tree_shap(boston_fit.model, boston_fit.X_test.iloc[:40], dataset="Boston housing")


@pytest.fixture(scope="module")
def one_feature_fit() -> tab.CatBoostFit:
    X = _uniform_frame(300, ["a", "b", "c", "d"], seed=1)
    return tab.train_catboost(X, 3.0 * X["a"], seed=0, iterations=60, depth=3, learning_rate=0.3, dataset="toy")


# --------------------------------------------------------------------------- cross-checks


def test_shap_matches_catboost_native_and_brute_force(boston_fit, boston_shap):
    check = tab.check_shap_against_catboost(boston_fit.model, boston_fit.X_test.iloc[:40], result=boston_shap)
    errors = check.errors()
    assert errors["native"] <= TOL
    assert errors["native_expected_value"] <= TOL
    assert errors["additivity"] <= TOL
    assert errors["interaction_sums"] <= TOL
    assert errors["brute_force"] <= TOL
    assert errors["brute_force_interactions"] <= TOL
    assert check.ok
    frame = check.to_frame()
    assert frame["passed"].all() and len(frame) == 6


def test_additivity_against_predict(boston_fit, boston_shap):
    prediction = boston_fit.model.predict(boston_fit.X_test.iloc[:40])
    np.testing.assert_allclose(boston_shap.values.sum(1) + boston_shap.expected_value, prediction, rtol=0, atol=TOL)
    np.testing.assert_allclose(boston_shap.predictions, prediction, rtol=0, atol=0)


def test_interaction_values_are_symmetric(boston_shap):
    inter = boston_shap.interaction_values
    assert inter.shape == (40, 13, 13)
    np.testing.assert_allclose(inter, inter.transpose(0, 2, 1), rtol=0, atol=TOL)


def test_brute_force_reproduces_predictions_and_is_self_consistent(boston_fit):
    rows = boston_fit.X_test.iloc[:10]
    ref = tab.brute_force_tree_shap(boston_fit.model, rows, interactions=True)
    np.testing.assert_allclose(ref["predictions"], boston_fit.model.predict(rows), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ref["interaction_values"].sum(2), ref["values"], rtol=0, atol=1e-9)
    # the expected value is the cover-weighted mean prediction of the training data
    assert abs(ref["expected_value"] - boston_fit.y_train.mean()) < 1.0


def test_check_detects_wrong_values(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:40]
    shifted = dataclasses.replace(boston_shap, values=boston_shap.values + 1e-3)
    check = tab.check_shap_against_catboost(boston_fit.model, rows, result=shifted, brute_force=False)
    assert not check.ok
    assert check.native == pytest.approx(1e-3, rel=1e-6)
    assert check.additivity == pytest.approx(13e-3, rel=1e-6)
    assert np.isnan(check.brute_force)
    swapped = dataclasses.replace(boston_shap, values=boston_shap.values[::-1].copy())
    assert not tab.check_shap_against_catboost(boston_fit.model, rows, result=swapped, brute_force=False).ok


def test_column_order_of_X_does_not_matter(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:40]
    shuffled = rows[list(reversed(rows.columns))]
    again = tab.tree_shap(boston_fit.model, shuffled, interactions=False)
    assert again.feature_names == boston_shap.feature_names
    np.testing.assert_array_equal(again.values, boston_shap.values)


# --------------------------------------------------------------------------- known answers


def test_only_informative_feature_gets_the_importance(one_feature_fit):
    fit = one_feature_fit
    result = tab.tree_shap(fit.model, fit.X_test, interactions=False)
    table = tab.importance_table(fit.model, fit.X_test, fit.y_test, result=result, n_repeats=3, seed=0)
    assert table.index[0] == "a"
    assert (table.loc["a", ["rank_shap", "rank_pvc", "rank_permutation"]] == 1).all()
    for share in ("shap_share", "pvc_share", "permutation_share"):
        assert table.loc["a", share] > 95.0, table[share]
    np.testing.assert_allclose(table[["shap_share", "pvc_share", "permutation_share"]].sum(), 100.0)
    assert (table["rms_shap"] >= table["mean_abs_shap"] - 1e-12).all()  # Jensen
    np.testing.assert_allclose(table.loc[list(result.feature_names), "mean_abs_shap"], np.abs(result.values).mean(0))
    assert tab.mean_abs_shap(result).index[0] == "a"


def test_stumps_are_additive():
    # depth-1 trees each use one feature, so f(x) = sum_i g_i(x_i): no interactions, and
    # phi_i(x) = g_i(x_i) - E[g_i], which depends on x_i alone
    X = _uniform_frame(300, ["a", "b", "c"], seed=2)
    fit = tab.train_catboost(X, X["a"] + X["b"] ** 2, seed=0, iterations=80, depth=1, learning_rate=0.3)
    rows = fit.X_test
    result = tab.tree_shap(fit.model, rows)
    off = result.interaction_values.copy()
    off[:, np.arange(3), np.arange(3)] = 0.0
    assert np.abs(off).max() <= 1e-12
    np.testing.assert_allclose(np.diagonal(result.interaction_values, axis1=1, axis2=2), result.values, atol=1e-12)
    others = rows.copy()
    others[["b", "c"]] = _uniform_frame(len(rows), ["b", "c"], seed=3).to_numpy()
    moved = tab.tree_shap(fit.model, others, interactions=False)
    np.testing.assert_allclose(moved.values[:, 0], result.values[:, 0], rtol=0, atol=1e-12)
    # f(x) - f(x') = phi_b(x) - phi_b(x') + phi_c(x) - phi_c(x') when only b, c change
    delta = fit.model.predict(rows) - fit.model.predict(others)
    np.testing.assert_allclose(delta, (result.values - moved.values)[:, 1:].sum(1), rtol=0, atol=1e-9)


def test_strongest_interaction_of_a_product():
    X = _uniform_frame(300, ["a", "b", "c", "d"], seed=4)
    fit = tab.train_catboost(X, X["a"] * X["b"], seed=0, iterations=100, depth=3, learning_rate=0.3)
    result = tab.tree_shap(fit.model, fit.X_test)
    partners = tab.strongest_interactions(result)
    assert partners["a"] == "b" and partners["b"] == "a"
    matrix = tab.mean_abs_interactions(result)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T, atol=1e-12)
    assert matrix.loc["a", "b"] > 5 * max(matrix.loc["a", "c"], matrix.loc["a", "d"])


def test_linear_baseline_fits_a_linear_target_exactly():
    X = _uniform_frame(200, ["a", "b", "c"], seed=5)
    fit = tab.train_catboost(X, 2.0 * X["a"] - X["b"] + 0.5, seed=0, **FAST)
    comparison = tab.compare_baselines(fit, tree_max_depth=3)
    table = comparison.table
    assert list(table.columns) == ["rmse_train", "rmse_test", "r2_train", "r2_test"]
    assert list(table.index) == ["CatBoost", "Linear regression", "Decision tree (depth 3)"]
    assert table.loc["Linear regression", "rmse_test"] < 1e-10
    assert table.loc["Linear regression", "r2_test"] == pytest.approx(1.0)
    assert table.loc["CatBoost", "rmse_test"] > table.loc["Linear regression", "rmse_test"]
    assert table.loc["CatBoost", "rmse_test"] == pytest.approx(fit.metrics["rmse_test"])
    assert comparison.models["CatBoost"] is fit.model


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert tab.regression_metrics(y, y) == {"rmse": 0.0, "r2": 1.0}
    assert tab.regression_metrics(y, y + 2.0)["rmse"] == pytest.approx(2.0)
    assert tab.regression_metrics(y, np.full(4, y.mean()))["r2"] == pytest.approx(0.0)


def test_train_catboost_split_and_params():
    X = _uniform_frame(100, ["a", "b"], seed=6)
    fit = tab.train_catboost(X, X["a"], test_size=0.2, seed=3, thread_count=1, **FAST)
    assert len(fit.X_test) == 20 and len(fit.X_train) == 80
    assert set(fit.X_train.index).isdisjoint(fit.X_test.index)
    assert fit.params["random_seed"] == 3 and fit.params["thread_count"] == 1
    assert fit.model.get_params()["thread_count"] == 1
    assert fit.feature_names == ("a", "b")


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_model_and_split():
    X = _uniform_frame(150, ["a", "b", "c"], seed=7)
    y = X["a"] - X["c"]
    first = tab.train_catboost(X, y, seed=11, **FAST)
    second = tab.train_catboost(X, y, seed=11, **FAST)
    other = tab.train_catboost(X, y, seed=12, **FAST)
    assert list(first.X_test.index) == list(second.X_test.index)
    assert list(first.X_test.index) != list(other.X_test.index)
    np.testing.assert_array_equal(first.model.predict(X), second.model.predict(X))
    one = tab.tree_shap(first.model, X)
    two = tab.tree_shap(second.model, X)
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.interaction_values, two.interaction_values)
    t1 = tab.importance_table(first.model, first.X_test, first.y_test, n_repeats=3, seed=5)
    t2 = tab.importance_table(second.model, second.X_test, second.y_test, n_repeats=3, seed=5)
    pd.testing.assert_frame_equal(t1, t2)


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, pd.Series]:
    X = _uniform_frame(40, ["a", "b"], seed=8)
    return X, X["a"] * 2


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda X, y: (X, y.where(y.index != 3)), ValueError, r"y contains NaN or inf at positions \[3\]"),
        (lambda X, y: (X, y.iloc[:-1]), ValueError, r"y must have one value per row of X \(40\), got 39"),
        (lambda X, y: (X, np.c_[y, y]), ValueError, r"y must be 1-D"),
        (lambda X, y: (X, y.astype(str)), TypeError, r"y must be numeric"),
        (lambda X, y: (X, y * 0 + 1), ValueError, r"y must take at least two distinct values"),
        (lambda X, y: (X.assign(c=["u"] * 40), y), TypeError, r"X must have numeric columns only.*c \("),
        (lambda X, y: (X.assign(b=np.nan), y), ValueError, r"X contains NaN or inf in columns \['b'\]"),
        (lambda X, y: (X["a"], y), TypeError, r"X must be a 2-D pandas DataFrame, got a Series"),
        (lambda X, y: (X.to_numpy()[:, 0], y), ValueError, r"X must be 2-D"),
        (lambda X, y: (X.to_numpy().tolist(), y), TypeError, r"X must be a pandas DataFrame"),
        (lambda X, y: (X.set_axis(["a", "a"], axis=1), y), ValueError, r"X has duplicate columns: \['a'\]"),
        (lambda X, y: (X.set_axis([0, 1], axis=1), y), TypeError, r"X column names must be non-empty strings"),
    ],
)
def test_train_catboost_rejects_bad_data(toy, mutate, error, match):
    X, y = mutate(*toy)
    with pytest.raises(error, match=match):
        tab.train_catboost(X, y, **FAST)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_size": 1.5}, r"test_size must be a finite number in \(0, 1\), got 1.5"),
        ({"test_size": 0.01}, r"test_size=0.01 leaves"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"thread_count": 0}, r"thread_count must be an integer >= 1, got 0"),
        ({"random_seed": 1}, r"params must not set 'random_seed'; pass seed= instead"),
        ({"eval_set": None}, r"params must not set 'eval_set'"),
        ({"grow_policy": "Depthwise"}, r"grow_policy must be 'SymmetricTree'.*got 'Depthwise'"),
    ],
)
def test_train_catboost_rejects_bad_arguments(toy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tab.train_catboost(*toy, **{**FAST, **kwargs})


def test_explainers_reject_bad_models_and_columns(boston_fit):
    rows = boston_fit.X_test.iloc[:5]
    for fn in (tab.tree_shap, tab.brute_force_tree_shap, tab.check_shap_against_catboost):
        with pytest.raises(ValueError, match=r"missing columns \['B'\], unexpected columns \[\]"):
            fn(boston_fit.model, rows.drop(columns="B"))
        with pytest.raises(ValueError, match=r"missing columns \[\], unexpected columns \['extra'\]"):
            fn(boston_fit.model, rows.assign(extra=1.0))
        with pytest.raises(TypeError, match=r"model must be a fitted catboost.CatBoostRegressor, got str"):
            fn("model", rows)
        with pytest.raises(ValueError, match=r"model is not fitted"):
            fn(CatBoostRegressor(), rows)
    with pytest.raises(TypeError, match=r"interactions must be True or False"):
        tab.tree_shap(boston_fit.model, rows, interactions="yes")


def test_brute_force_rejects_non_symmetric_trees(toy):
    X, y = toy
    model = CatBoostRegressor(
        iterations=3, depth=2, grow_policy="Depthwise", thread_count=1, verbose=False, allow_writing_files=False
    )
    model.fit(X, y)
    with pytest.raises(ValueError, match=r"model must use symmetric \(oblivious\) trees"):
        tab.brute_force_tree_shap(model, X)


def test_checks_reject_results_from_other_rows(boston_fit, boston_shap):
    other = boston_fit.X_test.iloc[40:80]
    with pytest.raises(ValueError, match=r"result was computed on other rows than X"):
        tab.check_shap_against_catboost(boston_fit.model, other, result=boston_shap)
    with pytest.raises(ValueError, match=r"result was computed on other rows than X"):
        tab.importance_table(boston_fit.model, other, boston_fit.y_test.iloc[40:80], result=boston_shap)
    with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
        tab.check_shap_against_catboost(boston_fit.model, other, result=np.zeros((40, 13)))
    with pytest.raises(ValueError, match=r"tolerance must be a finite number in \(0, inf\], got 0"):
        tab.check_shap_against_catboost(boston_fit.model, boston_fit.X_test.iloc[:40], result=boston_shap, tolerance=0)


def test_importance_table_rejects_bad_arguments(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:40]
    y = boston_fit.y_test.iloc[:40]
    with pytest.raises(ValueError, match=r"n_repeats must be an integer >= 1, got 0"):
        tab.importance_table(boston_fit.model, rows, y, result=boston_shap, n_repeats=0)
    with pytest.raises(ValueError, match=r"y must have one value per row of X \(40\), got 39"):
        tab.importance_table(boston_fit.model, rows, y.iloc[:-1], result=boston_shap)
    with pytest.raises(ValueError, match=r"y contains NaN"):
        tab.importance_table(boston_fit.model, rows, y.where(y > 15), result=boston_shap)


def test_interaction_helpers_need_interaction_values(boston_fit):
    result = tab.tree_shap(boston_fit.model, boston_fit.X_test.iloc[:5], interactions=False)
    assert result.interaction_values is None
    with pytest.raises(ValueError, match=r"result has no interaction values"):
        tab.mean_abs_interactions(result)
    with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
        tab.strongest_interactions({"values": 1})
    with pytest.raises(TypeError, match=r"fit must be the CatBoostFit"):
        tab.compare_baselines(boston_fit.model)
    with pytest.raises(ValueError, match=r"tree_max_depth must be an integer >= 1, got 0"):
        tab.compare_baselines(boston_fit, tree_max_depth=0)


# --------------------------------------------------------------------------- plots


def _titles(fig: Figure) -> str:
    texts = [ax.get_title() for ax in fig.axes] + [t.get_text() for ax in fig.axes for t in ax.texts]
    return " | ".join(texts)


def test_axes_plots_return_axes_with_titles(boston_shap):
    partner = tab.strongest_interactions(boston_shap)["LSTAT"]
    fig, axes = plt.subplots(1, 3)
    drawn = [
        tplots.plot_beeswarm(boston_shap, max_display=13, ax=axes[0]),
        tplots.plot_bar(boston_shap, ax=axes[1]),
        tplots.plot_dependence(boston_shap, "LSTAT", color_by=partner, ax=axes[2]),
    ]
    for ax, expected in zip(drawn, axes):
        assert ax is expected
        assert "CatBoostRegressor" in ax.get_title() and "Boston housing" in ax.get_title()
    assert f"coloured by {partner}" in axes[2].get_title()
    # the beeswarm draws one dot per row for each of the 13 features
    assert sum(len(c.get_offsets()) for c in axes[0].collections) == 40 * 13
    standalone = tplots.plot_bar(boston_shap, title="custom")
    assert isinstance(standalone, Axes) and standalone.get_title() == "custom"


def test_beeswarm_and_dependence_are_seeded_and_leave_the_global_rng_as_found(boston_shap):
    # shap draws the dot order from NumPy's global RNG; the helpers seed that draw and restore the state
    def offsets(plot, seed):
        fig, ax = plt.subplots()
        try:
            plot(boston_shap, ax=ax, seed=seed)
            return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
        finally:
            plt.close(fig)

    np.random.seed(123)
    state = np.random.get_state()
    for plot in (functools.partial(tplots.plot_beeswarm, max_display=13),
                 functools.partial(tplots.plot_dependence, feature="LSTAT")):
        first, again, other = offsets(plot, 0), offsets(plot, 0), offsets(plot, 1)
        assert np.array_equal(first, again)
        assert not np.array_equal(first, other)  # the seed is what fixes the order
        assert offsets(plot, None).shape == first.shape and offsets(plot, 2**62).shape == first.shape
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None"):
        tplots.plot_beeswarm(boston_shap, seed=-1)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None"):
        tplots.plot_dependence(boston_shap, "LSTAT", seed=1.5)


def test_figure_plots_return_figures_and_keep_interactive_mode(boston_shap):
    plt.ion()
    try:
        waterfall = tplots.plot_waterfall(boston_shap, 3)
        force = tplots.plot_force(boston_shap, -1)
        assert plt.isinteractive()
        # both figures stay managed by pyplot (the force figure is closed and reopened to be shown)
        assert force.number in plt.get_fignums() and waterfall.number in plt.get_fignums()
    finally:
        plt.ioff()
    assert isinstance(waterfall, Figure) and isinstance(force, Figure)
    label = f"row {boston_shap.data.index[3]}"
    assert label in _titles(waterfall) and "Boston housing" in _titles(waterfall)
    assert f"row {boston_shap.data.index[-1]}" in _titles(force) and "CatBoostRegressor" in _titles(force)


def test_heatmap_and_importance_plot(boston_fit, boston_shap):
    matrix = tab.mean_abs_interactions(boston_shap)
    ax = tplots.plot_interaction_heatmap(matrix, dataset="Boston housing")
    assert "Boston housing" in ax.get_title()
    image = ax.images[0].get_array()
    assert np.ma.is_masked(image[0, 0]) or np.isnan(image[0, 0])  # diagonal left out of the colour scale
    assert image[0, 1] == pytest.approx(matrix.iloc[0, 1])
    table = tab.importance_table(
        boston_fit.model, boston_fit.X_test.iloc[:40], boston_fit.y_test.iloc[:40], result=boston_shap, n_repeats=2
    )
    ax = tplots.plot_importance_comparison(table, dataset="Boston housing")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    assert len(ax.patches) == 3 * 13


def test_plots_reject_bad_arguments(boston_shap):
    with pytest.raises(ValueError, match=r"feature must be one of .*got 'nope'"):
        tplots.plot_dependence(boston_shap, "nope")
    with pytest.raises(ValueError, match=r"color_by must be one of"):
        tplots.plot_dependence(boston_shap, "RM", color_by="nope")
    with pytest.raises(ValueError, match=r"index must be an integer row position in \[0, 40\), got 40"):
        tplots.plot_waterfall(boston_shap, 40)
    with pytest.raises(ValueError, match=r"index must be an integer row position"):
        tplots.plot_force(boston_shap, 1.5)
    with pytest.raises(TypeError, match=r"ax must be a matplotlib Axes or None, got str"):
        tplots.plot_beeswarm(boston_shap, ax="ax")
    with pytest.raises(ValueError, match=r"max_display must be an integer >= 1, got 0"):
        tplots.plot_bar(boston_shap, max_display=0)
    with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
        tplots.plot_beeswarm(boston_shap.values)
    with pytest.raises(ValueError, match=r"matrix must be square"):
        tplots.plot_interaction_heatmap(pd.DataFrame(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"table is missing columns \['pvc_share'\]"):
        tplots.plot_importance_comparison(pd.DataFrame({"shap_share": [1.0], "permutation_share": [1.0]}))
