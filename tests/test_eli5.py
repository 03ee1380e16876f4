"""ELI5 wrappers and the agreement measure in interp_helpers.tabular.importance, checked against independent computations.

* ``eli5_weights`` on CatBoost equals CatBoost's ``PredictionValuesChange`` rescaled to sum to 1, and on a
  scikit-learn forest its ``feature_importances_``;
* ``decision_path_contributions`` (ELI5's Saabas contributions) add up to the prediction, and on a single
  tree equal a decision-path walk written here from ``tree_.value``;
* the inconsistency example of Lundberg, Erion & Lee (2018, Fig. 1) with known numbers: Saabas lowers the
  credit of the feature the second model depends on *more*, SHAP raises it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

import interp_helpers.tabular as tab


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    y = pd.Series(3 * X["a"] + X["b"] * X["c"] + 0.1 * rng.normal(size=120))
    return X, y


def test_eli5_weights_of_catboost_are_prediction_values_change(data):
    X, y = data
    fit = tab.train_catboost(X, y, iterations=60, seed=0, thread_count=1)
    weights = tab.eli5_weights(fit.model)
    pvc = pd.Series(fit.model.get_feature_importance(type="PredictionValuesChange"), index=X.columns) / 100
    np.testing.assert_allclose(weights[X.columns], pvc, atol=1e-6)
    assert weights.index[0] == "a" and list(weights) == sorted(weights, reverse=True)


def test_eli5_weights_of_a_forest_are_its_feature_importances(data):
    X, y = data
    rf = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    weights = tab.eli5_weights(rf)
    np.testing.assert_allclose(weights[X.columns], rf.feature_importances_, atol=1e-12)


def _path_walk(tree: DecisionTreeRegressor, row: np.ndarray, names: list[str]) -> dict[str, float]:
    """Saabas by hand: the change of node mean at each split on the row's path, credited to the split feature."""
    t = tree.tree_
    out = dict.fromkeys(names, 0.0)
    node = 0
    out["<BIAS>"] = float(t.value[0].ravel()[0])
    while t.children_left[node] != -1:
        feature = t.feature[node]
        child = t.children_left[node] if row[feature] <= t.threshold[node] else t.children_right[node]
        out[names[feature]] += float(t.value[child].ravel()[0] - t.value[node].ravel()[0])
        node = child
    return out


def test_saabas_contributions_match_a_path_walk_and_add_up(data):
    X, y = data
    tree = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, y)
    rows = X.iloc[:6]
    contributions = tab.decision_path_contributions(tree, rows)
    assert list(contributions.columns) == [*X.columns, "<BIAS>"] and contributions.index.equals(rows.index)
    expected = pd.DataFrame([_path_walk(tree, r, list(X.columns)) for r in rows.to_numpy()], index=rows.index)
    np.testing.assert_allclose(contributions[expected.columns], expected, atol=1e-10)
    rf = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, y)
    forest = tab.decision_path_contributions(rf, rows)
    np.testing.assert_allclose(forest.sum(axis=1), rf.predict(rows), atol=1e-10)


def test_saabas_is_inconsistent_and_shap_is_not():
    # Lundberg et al. 2018, Fig. 1: model A = 80 if fever and cough; model B adds 10 if cough.
    # B depends more on cough than A does, yet Saabas gives cough less credit in B (40 -> 25).
    X = pd.DataFrame({"fever": [0.0, 0.0, 1.0, 1.0], "cough": [0.0, 1.0, 0.0, 1.0]})
    y_a = 80.0 * X["fever"] * X["cough"]
    a = DecisionTreeRegressor(max_depth=2, random_state=2).fit(X, y_a)
    b = DecisionTreeRegressor(max_depth=2, random_state=2).fit(X, y_a + 10.0 * X["cough"])
    assert (X.columns[a.tree_.feature[0]], X.columns[b.tree_.feature[0]]) == ("fever", "cough")
    row = X.iloc[[3]]
    saabas = {name: tab.decision_path_contributions(m, row).iloc[0] for name, m in (("A", a), ("B", b))}
    assert saabas["A"][["fever", "cough", "<BIAS>"]].tolist() == pytest.approx([20, 40, 20])
    assert saabas["B"][["fever", "cough", "<BIAS>"]].tolist() == pytest.approx([40, 25, 25])
    shap_a = shap.TreeExplainer(a)(row).values[0]
    shap_b = shap.TreeExplainer(b)(row).values[0]
    assert shap_a.tolist() == pytest.approx([30, 30]) and shap_b.tolist() == pytest.approx([30, 35])


def test_attribution_agreement_known_values():
    a = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    same = tab.attribution_agreement(a, a)
    assert same["max_abs_diff"] == 0 and same["pearson_r"] == pytest.approx(1)
    assert same["rank_corr_importance"] == pytest.approx(1) and same["same_top_feature"] == 1
    b = a.copy()
    b[0, 0] = 3.0  # row 0's top feature moves from column 1 to column 0
    other = tab.attribution_agreement(a, b)
    assert other["max_abs_diff"] == pytest.approx(2) and other["mean_abs_diff"] == pytest.approx(2 / 6)
    assert other["same_top_feature"] == pytest.approx(0.5)
    assert other["mean_abs_reference"] == pytest.approx(np.abs(a).mean())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: tab.attribution_agreement(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "same shape"),
        (lambda: tab.attribution_agreement(np.zeros(3), np.zeros(3)), ValueError, "reference"),
        (lambda: tab.attribution_agreement(np.ones((2, 3)), np.full((2, 3), np.nan)), ValueError, "other"),
        (lambda: tab.attribution_agreement("x", np.zeros((2, 3))), TypeError, "reference"),
        (lambda: tab.attribution_agreement(np.ones((2, 3)), np.ones((2, 3)), feature_names=["a"]), ValueError,
         "feature_names"),
        (lambda: tab.eli5_weights(object()), TypeError, "model"),
        (lambda: tab.decision_path_contributions(object(), pd.DataFrame({"a": [1.0]})), TypeError, "model"),
        (lambda: tab.decision_path_contributions(DecisionTreeRegressor(), pd.DataFrame({"a": [1.0]})), ValueError,
         "not fitted"),
    ],
)
def test_bad_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_decision_path_contributions_rejects_other_columns(data):
    X, y = data
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X must have exactly the model's columns"):
        tab.decision_path_contributions(tree, X[["b", "a", "c", "d"]])
    array_tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X.to_numpy(), y)
    np.testing.assert_allclose(tab.decision_path_contributions(array_tree, X.iloc[:3]).sum(axis=1),
                               array_tree.predict(X.iloc[:3].to_numpy()), atol=1e-12)
    with pytest.raises(ValueError, match="model's 4 columns"):
        tab.decision_path_contributions(array_tree, X[["a", "b"]])
    with pytest.raises(ValueError, match="X contains NaN"):
        tab.decision_path_contributions(tree, X.iloc[:2].assign(a=np.nan))
