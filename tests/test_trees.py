"""Tests for interp_helpers.trees (CatBoost, TreeSHAP, the brute-force reference, importances, ELI5).

Known answers: data where one feature alone sets the target; a linear target that least squares fits
exactly; stumps (depth-1 trees), whose model is additive, so SHAP interactions vanish; a product whose
strongest interaction is known; the Saabas inconsistency example of Lundberg, Erion & Lee (2018, Fig. 1).
Cross-checks: shap vs CatBoost's native ShapValues, additivity, and the brute-force Shapley enumeration,
all to 1e-6; ELI5 vs CatBoost's PredictionValuesChange and a decision-path walk written here.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shap
from catboost import CatBoostRegressor
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

import interp_helpers as ih
from interp_helpers import trees
from interp_helpers._common import DEFAULT_SEED

TOL = 1e-6
FAST = {"iterations": 60, "depth": 4, "learning_rate": 0.2, "thread_count": 1}


def _uniform_frame(n: int, columns: list[str], seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, len(columns))), columns=columns)


@pytest.fixture(scope="module")
def boston_fit() -> trees.CatBoostFit:
    X, y = ih.load_boston()
    # depth 6: the oblivious trees repeat features across levels, the hard case for TreeSHAP
    return trees.train_catboost(X, y, iterations=40, depth=6, learning_rate=0.2, thread_count=1,
                                dataset="Boston housing")


@pytest.fixture(scope="module")
def boston_shap(boston_fit) -> trees.TreeShapResult:
    return trees.tree_shap(boston_fit.model, boston_fit.X_test.iloc[:40], dataset="Boston housing")


# --------------------------------------------------------------------------- cross-checks


def test_shap_matches_catboost_native_and_brute_force(boston_fit, boston_shap):
    check = trees.check_shap_against_catboost(boston_fit.model, boston_fit.X_test.iloc[:40], result=boston_shap)
    assert set(check.errors()) == {"native", "native_expected_value", "additivity", "interaction_sums",
                                   "brute_force", "brute_force_interactions"}
    assert all(error <= TOL for error in check.errors().values()), check.errors()
    assert check.ok and check.n_rows == 40
    frame = check.to_frame()
    assert frame["passed"].all() and len(frame) == 6


def test_additivity_and_symmetry(boston_fit, boston_shap):
    prediction = boston_fit.model.predict(boston_fit.X_test.iloc[:40])
    np.testing.assert_allclose(boston_shap.values.sum(1) + boston_shap.expected_value, prediction, rtol=0, atol=TOL)
    np.testing.assert_array_equal(boston_shap.predictions, prediction)
    inter = boston_shap.interaction_values
    assert inter.shape == (40, 13, 13)
    np.testing.assert_allclose(inter, inter.transpose(0, 2, 1), rtol=0, atol=TOL)


def test_brute_force_returns_a_tree_shap_result(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:10]
    ref = trees.brute_force_tree_shap(boston_fit.model, rows)
    assert isinstance(ref, trees.TreeShapResult) and ref.feature_names == boston_shap.feature_names
    np.testing.assert_allclose(ref.predictions, boston_fit.model.predict(rows), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ref.interaction_values.sum(2), ref.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ref.values, boston_shap.values[:10], rtol=0, atol=TOL)
    assert ref.expected_value == pytest.approx(boston_shap.expected_value, abs=TOL)
    # the expected value is the cover-weighted mean prediction of the training data
    assert abs(ref.expected_value - boston_fit.y_train.mean()) < 1.0
    plain = trees.brute_force_tree_shap(boston_fit.model, rows, interactions=False)
    assert plain.interaction_values is None
    np.testing.assert_array_equal(plain.values, ref.values)


def test_check_detects_wrong_values(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:40]
    shifted = dataclasses.replace(boston_shap, values=boston_shap.values + 1e-3)
    check = trees.check_shap_against_catboost(boston_fit.model, rows, result=shifted, brute_force=False)
    assert not check.ok
    assert check.native == pytest.approx(1e-3, rel=1e-6)
    assert check.additivity == pytest.approx(13e-3, rel=1e-6)
    assert np.isnan(check.brute_force) and np.isnan(check.to_frame().loc["shap == brute-force Shapley", "passed"])
    swapped = dataclasses.replace(boston_shap, values=boston_shap.values[::-1].copy())
    assert not trees.check_shap_against_catboost(boston_fit.model, rows, result=swapped, brute_force=False).ok


def test_column_order_of_X_does_not_matter(boston_fit, boston_shap):
    rows = boston_fit.X_test.iloc[:40]
    again = trees.tree_shap(boston_fit.model, rows[list(reversed(rows.columns))], interactions=False)
    assert again.feature_names == boston_shap.feature_names and again.interaction_values is None
    np.testing.assert_array_equal(again.values, boston_shap.values)


# --------------------------------------------------------------------------- known answers


def test_only_informative_feature_gets_the_importance():
    X = _uniform_frame(300, ["a", "b", "c", "d"], seed=1)
    fit = trees.train_catboost(X, 3.0 * X["a"], iterations=60, depth=3, learning_rate=0.3, thread_count=1)
    result = trees.tree_shap(fit.model, fit.X_test, interactions=False)
    table = trees.importance_table(fit.model, fit.X_test, fit.y_test, result=result, n_repeats=3)
    assert table.index[0] == "a"
    assert (table.loc["a", ["rank_shap", "rank_pvc", "rank_permutation"]] == 1).all()
    for share in ("shap_share", "pvc_share", "permutation_share"):
        assert table.loc["a", share] > 95.0, table[share]
    np.testing.assert_allclose(table[["shap_share", "pvc_share", "permutation_share"]].sum(), 100.0)
    assert (table["rms_shap"] >= table["mean_abs_shap"] - 1e-12).all()  # Jensen
    np.testing.assert_allclose(table.loc[list(result.feature_names), "mean_abs_shap"], np.abs(result.values).mean(0))
    assert trees.mean_abs_shap(result).index[0] == "a"


def test_stumps_are_additive():
    # depth-1 trees each use one feature, so f(x) = sum_i g_i(x_i): no interactions, and
    # phi_i(x) = g_i(x_i) - E[g_i], which depends on x_i alone
    X = _uniform_frame(300, ["a", "b", "c"], seed=2)
    fit = trees.train_catboost(X, X["a"] + X["b"] ** 2, iterations=80, depth=1, learning_rate=0.3, thread_count=1)
    rows = fit.X_test
    result = trees.tree_shap(fit.model, rows)
    off = result.interaction_values.copy()
    off[:, np.arange(3), np.arange(3)] = 0.0
    assert np.abs(off).max() <= 1e-12
    np.testing.assert_allclose(np.diagonal(result.interaction_values, axis1=1, axis2=2), result.values, atol=1e-12)
    others = rows.copy()
    others[["b", "c"]] = _uniform_frame(len(rows), ["b", "c"], seed=3).to_numpy()
    moved = trees.tree_shap(fit.model, others, interactions=False)
    np.testing.assert_allclose(moved.values[:, 0], result.values[:, 0], rtol=0, atol=1e-12)
    # f(x) - f(x') = phi_b(x) - phi_b(x') + phi_c(x) - phi_c(x') when only b, c change
    delta = fit.model.predict(rows) - fit.model.predict(others)
    np.testing.assert_allclose(delta, (result.values - moved.values)[:, 1:].sum(1), rtol=0, atol=1e-9)
    brute = trees.brute_force_tree_shap(fit.model, rows)
    np.testing.assert_allclose(brute.interaction_values, result.interaction_values, rtol=0, atol=1e-9)


def test_strongest_interaction_of_a_product():
    X = _uniform_frame(300, ["a", "b", "c", "d"], seed=4)
    fit = trees.train_catboost(X, X["a"] * X["b"], iterations=100, depth=3, learning_rate=0.3, thread_count=1)
    result = trees.tree_shap(fit.model, fit.X_test)
    partners = trees.strongest_interactions(result)
    assert partners["a"] == "b" and partners["b"] == "a"
    matrix = trees.mean_abs_interactions(result)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T, atol=1e-12)
    assert matrix.loc["a", "b"] > 5 * max(matrix.loc["a", "c"], matrix.loc["a", "d"])


def test_linear_baseline_fits_a_linear_target_exactly():
    X = _uniform_frame(200, ["a", "b", "c"], seed=5)
    fit = trees.train_catboost(X, 2.0 * X["a"] - X["b"] + 0.5, **FAST)
    comparison = trees.compare_baselines(fit, tree_max_depth=3)
    table = comparison.table
    assert list(table.columns) == ["rmse_train", "rmse_test", "r2_train", "r2_test"]
    assert list(table.index) == ["CatBoost", "Linear regression", "Decision tree (depth 3)"]
    assert table.loc["Linear regression", "rmse_test"] < 1e-10
    assert table.loc["Linear regression", "r2_test"] == pytest.approx(1.0)
    assert table.loc["CatBoost", "rmse_test"] > table.loc["Linear regression", "rmse_test"]
    assert table.loc["CatBoost", "rmse_test"] == pytest.approx(fit.metrics["rmse_test"])
    assert comparison.models["CatBoost"] is fit.model
    assert "Decision tree (depth unlimited)" in trees.compare_baselines(fit, tree_max_depth=None).table.index


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert trees.regression_metrics(y, y) == {"rmse": 0.0, "r2": 1.0}
    assert trees.regression_metrics(list(y), y + 2.0)["rmse"] == pytest.approx(2.0)
    assert trees.regression_metrics(pd.Series(y), np.full(4, y.mean()))["r2"] == pytest.approx(0.0)
    assert np.isnan(trees.regression_metrics(np.ones(3), np.zeros(3))["r2"])  # constant truth: R^2 undefined


def test_train_catboost_split_params_and_seeds():
    X = _uniform_frame(100, ["a", "b"], seed=6)
    fit = trees.train_catboost(X, X["a"], test_size=0.2, seed=3, **FAST)
    assert len(fit.X_test) == 20 and len(fit.X_train) == 80
    assert set(fit.X_train.index).isdisjoint(fit.X_test.index)
    assert fit.seed == 3 and fit.params["random_seed"] == 3 and fit.params["thread_count"] == 1
    assert fit.model.get_params()["thread_count"] == 1 and fit.params["iterations"] == 60
    assert trees.train_catboost(X, X["a"], **FAST).seed == DEFAULT_SEED
    fresh = trees.train_catboost(X, X["a"], seed=None, **FAST)
    assert isinstance(fresh.seed, int) and fresh.params["random_seed"] == fresh.seed


def test_same_seed_same_model_split_and_importance():
    X = _uniform_frame(150, ["a", "b", "c"], seed=7)
    y = X["a"] - X["c"]
    first, second = (trees.train_catboost(X, y, seed=11, **FAST) for _ in range(2))
    other = trees.train_catboost(X, y, seed=12, **FAST)
    assert list(first.X_test.index) == list(second.X_test.index) != list(other.X_test.index)
    np.testing.assert_array_equal(first.model.predict(X), second.model.predict(X))
    one, two = trees.tree_shap(first.model, X), trees.tree_shap(second.model, X)
    np.testing.assert_array_equal(one.interaction_values, two.interaction_values)
    t1 = trees.importance_table(first.model, first.X_test, first.y_test, n_repeats=3, seed=5)
    t2 = trees.importance_table(second.model, second.X_test, second.y_test, n_repeats=3, seed=5)
    pd.testing.assert_frame_equal(t1, t2)


# --------------------------------------------------------------------------- ELI5, Saabas, agreement


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    return X, pd.Series(3 * X["a"] + X["b"] * X["c"] + 0.1 * rng.normal(size=120))


def test_eli5_weights_of_catboost_are_prediction_values_change(data):
    X, y = data
    fit = trees.train_catboost(X, y, **FAST)
    weights = trees.eli5_weights(fit.model)
    pvc = pd.Series(fit.model.get_feature_importance(type="PredictionValuesChange"), index=X.columns) / 100
    np.testing.assert_allclose(weights[X.columns], pvc, atol=1e-6)
    assert weights.index[0] == "a" and list(weights) == sorted(weights, reverse=True)


def test_eli5_weights_of_a_forest_are_its_feature_importances(data):
    X, y = data
    rf = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(trees.eli5_weights(rf)[X.columns], rf.feature_importances_, atol=1e-12)
    array_rf = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="feature_names must be given"):
        trees.eli5_weights(array_rf)
    assert list(trees.eli5_weights(array_rf, feature_names=list("pqrs")).sort_index().index) == list("pqrs")


def _path_walk(tree: DecisionTreeRegressor, row: np.ndarray, names: list[str]) -> dict[str, float]:
    """Saabas by hand: the change of node mean at each split on the row's path, credited to the split feature."""
    t = tree.tree_
    out = dict.fromkeys(names, 0.0)
    node = 0
    out["<BIAS>"] = float(t.value[0].ravel()[0])
    while t.children_left[node] != -1:
        child = t.children_left[node] if row[t.feature[node]] <= t.threshold[node] else t.children_right[node]
        out[names[t.feature[node]]] += float(t.value[child].ravel()[0] - t.value[node].ravel()[0])
        node = child
    return out


def test_saabas_contributions_match_a_path_walk_and_add_up(data):
    X, y = data
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y)
    rows = X.iloc[:6]
    contributions = trees.decision_path_contributions(tree, rows)
    assert list(contributions.columns) == [*X.columns, "<BIAS>"] and contributions.index.equals(rows.index)
    expected = pd.DataFrame([_path_walk(tree, r, list(X.columns)) for r in rows.to_numpy()], index=rows.index)
    np.testing.assert_allclose(contributions[expected.columns], expected, atol=1e-10)
    rf = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, y)
    np.testing.assert_allclose(trees.decision_path_contributions(rf, rows).sum(axis=1), rf.predict(rows), atol=1e-10)


def test_saabas_is_inconsistent_and_shap_is_not():
    # Lundberg et al. 2018, Fig. 1: model A = 80 if fever and cough; model B adds 10 if cough.
    # B depends more on cough than A does, yet Saabas gives cough less credit in B (40 -> 25).
    X = pd.DataFrame({"fever": [0.0, 0.0, 1.0, 1.0], "cough": [0.0, 1.0, 0.0, 1.0]})
    y_a = 80.0 * X["fever"] * X["cough"]
    a = DecisionTreeRegressor(max_depth=2, random_state=2).fit(X, y_a)
    b = DecisionTreeRegressor(max_depth=2, random_state=2).fit(X, y_a + 10.0 * X["cough"])
    assert (X.columns[a.tree_.feature[0]], X.columns[b.tree_.feature[0]]) == ("fever", "cough")
    row = X.iloc[[3]]
    saabas = {name: trees.decision_path_contributions(m, row).iloc[0] for name, m in (("A", a), ("B", b))}
    assert saabas["A"][["fever", "cough", "<BIAS>"]].tolist() == pytest.approx([20, 40, 20])
    assert saabas["B"][["fever", "cough", "<BIAS>"]].tolist() == pytest.approx([40, 25, 25])
    assert shap.TreeExplainer(a)(row).values[0].tolist() == pytest.approx([30, 30])
    assert shap.TreeExplainer(b)(row).values[0].tolist() == pytest.approx([30, 35])


def test_attribution_agreement_known_values_and_scipy():
    a = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    same = trees.attribution_agreement(a, pd.DataFrame(a))
    assert same["max_abs_diff"] == 0 and same["pearson_r"] == pytest.approx(1)
    assert same["rank_corr_importance"] == pytest.approx(1) and same["same_top_feature"] == 1
    b = a.copy()
    b[0, 0] = 3.0  # row 0's top feature moves from column 1 to column 0
    other = trees.attribution_agreement(a, b)
    assert other["max_abs_diff"] == pytest.approx(2) and other["mean_abs_diff"] == pytest.approx(2 / 6)
    assert other["same_top_feature"] == pytest.approx(0.5)
    assert other["mean_abs_reference"] == pytest.approx(np.abs(a).mean())
    assert other["pearson_r"] == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    rng = np.random.default_rng(1)
    c, d = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    expected = stats.spearmanr(np.abs(c).mean(0), np.abs(d).mean(0)).statistic
    assert trees.attribution_agreement(c, d)["rank_corr_importance"] == pytest.approx(expected)
    assert np.isnan(trees.attribution_agreement(np.ones((2, 3)), a)["pearson_r"])  # a constant map has no ranking


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
        (lambda X, y: (X, np.c_[y, y]), ValueError, r"y must be 1-D \(one target per row\), got shape \(40, 2\)"),
        (lambda X, y: (X, y.astype(str)), TypeError, r"y must be numeric"),
        (lambda X, y: (X, y > 0), TypeError, r"y must be numeric, got dtype bool"),
        (lambda X, y: (X, y * 0 + 1), ValueError, r"y must take at least two distinct values"),
        (lambda X, y: (X.assign(c=["u"] * 40), y), TypeError, r"X must have numeric columns only.*c \("),
        (lambda X, y: (X.assign(c=True), y), TypeError, r"X must have numeric columns only.*c \(bool"),
        (lambda X, y: (X.assign(b=np.nan), y), ValueError, r"X contains NaN or inf in columns \['b'\]"),
        (lambda X, y: (X.assign(b=np.inf), y), ValueError, r"X contains NaN or inf in columns \['b'\]"),
        (lambda X, y: (X["a"], y), TypeError, r"X must be a pandas DataFrame .*got Series"),
        (lambda X, y: (X.to_numpy(), y), TypeError, r"X must be a pandas DataFrame .*got ndarray"),
        (lambda X, y: (X.to_numpy().tolist(), y), TypeError, r"X must be a pandas DataFrame"),
        (lambda X, y: (X.set_axis(["a", "a"], axis=1), y), ValueError, r"X has duplicate columns: \['a'\]"),
        (lambda X, y: (X.set_axis([0, 1], axis=1), y), TypeError, r"X column names must be non-empty strings"),
    ],
)
def test_train_catboost_rejects_bad_data(toy, mutate, error, match):
    X, y = mutate(*toy)
    with pytest.raises(error, match=match):
        trees.train_catboost(X, y, **FAST)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_size": 1.5}, r"test_size must be a finite number in \[0.0, 1.0\], got 1.5"),
        ({"test_size": 0.01}, r"test_size=0.01 leaves 39 training and 1 test rows out of 40"),
        ({"test_size": 0.0}, r"test_size=0.0 leaves"),
        ({"seed": -1}, r"seed must be a non-negative integer or None, got -1"),
        ({"thread_count": 0}, r"thread_count must be an integer >= 1, got 0"),
        ({"random_seed": 1}, r"params must not set 'random_seed'; pass seed= instead"),
        ({"eval_set": None}, r"params must not set 'eval_set'"),
        ({"grow_policy": "Depthwise"}, r"grow_policy must be 'SymmetricTree'.*got 'Depthwise'"),
    ],
)
def test_train_catboost_rejects_bad_arguments(toy, kwargs, match):
    with pytest.raises(ValueError, match=match):
        trees.train_catboost(*toy, **{**FAST, **kwargs})


def test_explainers_reject_bad_models_and_columns(boston_fit):
    rows = boston_fit.X_test.iloc[:5]
    for fn in (trees.tree_shap, trees.brute_force_tree_shap, trees.check_shap_against_catboost):
        with pytest.raises(ValueError, match=r"missing columns \['B'\], unexpected columns \[\]"):
            fn(boston_fit.model, rows.drop(columns="B"))
        with pytest.raises(ValueError, match=r"missing columns \[\], unexpected columns \['extra'\]"):
            fn(boston_fit.model, rows.assign(extra=1.0))
        with pytest.raises(TypeError, match=r"model must be a fitted catboost.CatBoostRegressor, got str"):
            fn("model", rows)
        with pytest.raises(ValueError, match=r"model is not fitted"):
            fn(CatBoostRegressor(), rows)
    for fn in (trees.tree_shap, trees.brute_force_tree_shap):
        with pytest.raises(TypeError, match=r"interactions must be True or False, got 'yes'"):
            fn(boston_fit.model, rows, interactions="yes")
    with pytest.raises(TypeError, match=r"brute_force must be True or False, got 1"):
        trees.check_shap_against_catboost(boston_fit.model, rows, brute_force=1)


def test_brute_force_rejects_non_symmetric_trees(toy):
    X, y = toy
    model = CatBoostRegressor(iterations=3, depth=2, grow_policy="Depthwise", thread_count=1, verbose=False,
                              allow_writing_files=False).fit(X, y)
    with pytest.raises(ValueError, match=r"model must use symmetric \(oblivious\) trees"):
        trees.brute_force_tree_shap(model, X)


def test_checks_reject_results_from_other_rows_and_bad_tolerances(boston_fit, boston_shap):
    other, rows = boston_fit.X_test.iloc[40:80], boston_fit.X_test.iloc[:40]
    with pytest.raises(ValueError, match=r"result was computed on other rows than X"):
        trees.check_shap_against_catboost(boston_fit.model, other, result=boston_shap)
    with pytest.raises(ValueError, match=r"result was computed on other rows than X"):
        trees.importance_table(boston_fit.model, other, boston_fit.y_test.iloc[40:80], result=boston_shap)
    with pytest.raises(TypeError, match=r"result must be the TreeShapResult returned by tree_shap, got ndarray"):
        trees.check_shap_against_catboost(boston_fit.model, other, result=np.zeros((40, 13)))
    with pytest.raises(ValueError, match=r"tolerance must be a finite number > 0, got 0"):
        trees.check_shap_against_catboost(boston_fit.model, rows, result=boston_shap, tolerance=0)
    with pytest.raises(ValueError, match=r"tolerance must be a finite number in \[0.0, inf\], got -1"):
        trees.check_shap_against_catboost(boston_fit.model, rows, result=boston_shap, tolerance=-1)


def test_importance_table_and_metrics_reject_bad_arguments(boston_fit, boston_shap):
    rows, y = boston_fit.X_test.iloc[:40], boston_fit.y_test.iloc[:40]
    with pytest.raises(ValueError, match=r"n_repeats must be an integer >= 1, got 0"):
        trees.importance_table(boston_fit.model, rows, y, result=boston_shap, n_repeats=0)
    with pytest.raises(ValueError, match=r"y must have one value per row of X \(40\), got 39"):
        trees.importance_table(boston_fit.model, rows, y.iloc[:-1], result=boston_shap)
    with pytest.raises(ValueError, match=r"y contains NaN"):
        trees.importance_table(boston_fit.model, rows, y.where(y > 15), result=boston_shap)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer or None"):
        trees.importance_table(boston_fit.model, rows, y, result=boston_shap, seed=-2)
    with pytest.raises(ValueError, match=r"y_pred must have one value per row of X \(2\), got 1"):
        trees.regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"y_true must be 1-D"):
        trees.regression_metrics(3.0, [1.0])


def test_interaction_helpers_and_baselines_reject_bad_arguments(boston_fit):
    result = trees.tree_shap(boston_fit.model, boston_fit.X_test.iloc[:5], interactions=False)
    for fn in (trees.mean_abs_interactions, trees.strongest_interactions):
        with pytest.raises(ValueError, match=r"result has no interaction values"):
            fn(result)
        with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
            fn({"values": 1})
    with pytest.raises(TypeError, match=r"result must be the TreeShapResult"):
        trees.mean_abs_shap(result.values)
    with pytest.raises(TypeError, match=r"fit must be the CatBoostFit"):
        trees.compare_baselines(boston_fit.model)
    with pytest.raises(ValueError, match=r"tree_max_depth must be an integer >= 1, got 0"):
        trees.compare_baselines(boston_fit, tree_max_depth=0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: trees.attribution_agreement(np.zeros((2, 3)), np.zeros((2, 4))), ValueError,
         r"reference and other must have the same shape, got \(2, 3\) and \(2, 4\)"),
        (lambda: trees.attribution_agreement(np.zeros(3), np.zeros(3)), ValueError, r"reference must be a finite 2-D"),
        (lambda: trees.attribution_agreement(np.zeros((2, 1)), np.zeros((2, 1))), ValueError, r"features >= 2"),
        (lambda: trees.attribution_agreement(np.ones((2, 3)), np.full((2, 3), np.nan)), ValueError,
         r"other must be a finite 2-D"),
        (lambda: trees.attribution_agreement("x", np.zeros((2, 3))), TypeError, r"reference must be a numeric"),
        (lambda: trees.eli5_weights(object()), TypeError, r"model must be a fitted model that ELI5 supports"),
        (lambda: trees.decision_path_contributions(object(), pd.DataFrame({"a": [1.0]})), TypeError,
         r"model must be a scikit-learn tree or tree-ensemble regressor, got object"),
        (lambda: trees.decision_path_contributions(DecisionTreeRegressor(), pd.DataFrame({"a": [1.0]})), ValueError,
         r"model is not fitted"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_decision_path_contributions_rejects_other_columns(data):
    X, y = data
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X must have exactly the model's columns in order"):
        trees.decision_path_contributions(tree, X[["b", "a", "c", "d"]])
    array_tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X.to_numpy(), y)
    np.testing.assert_allclose(trees.decision_path_contributions(array_tree, X.iloc[:3]).sum(axis=1),
                               array_tree.predict(X.iloc[:3].to_numpy()), atol=1e-12)
    with pytest.raises(ValueError, match="X must have the model's 4 columns, got 2"):
        trees.decision_path_contributions(array_tree, X[["a", "b"]])
    with pytest.raises(ValueError, match="X contains NaN"):
        trees.decision_path_contributions(tree, X.iloc[:2].assign(a=np.nan))
