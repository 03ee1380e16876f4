"""Gradient-boosted trees on tabular data, explained with TreeSHAP -- computation only.

* :func:`train_catboost` -- a ``CatBoostRegressor`` (Prokhorenkova et al. 2018,
  "CatBoost: unbiased boosting with categorical features") on a seeded
  train/test split with a bounded thread count; :func:`compare_baselines` puts
  it next to ordinary least squares and a single CART decision tree.
* :func:`tree_shap` -- SHAP values (Lundberg & Lee 2017, "A Unified Approach to
  Interpreting Model Predictions") and SHAP interaction values computed by
  ``shap.TreeExplainer`` with the path-dependent TreeSHAP algorithm (Lundberg et
  al. 2020, "From local explanations to global understanding with explainable
  AI for trees", Nature Machine Intelligence 2:56-67).
* :func:`brute_force_tree_shap` -- an independent reference: the exact Shapley
  values (and Shapley interaction indices) of the same path-dependent value
  function, by enumerating every feature subset of every tree, written in NumPy
  from the model's JSON dump.
* :func:`check_shap_against_catboost` -- the cross-checks: ``shap`` vs CatBoost's
  native ``get_feature_importance(type="ShapValues")``, additivity (local
  accuracy), interaction values summing to SHAP values, and the brute force.
* :func:`importance_table` -- global importance three ways: mean |SHAP|,
  CatBoost's ``PredictionValuesChange`` and scikit-learn's permutation
  importance (Breiman 2001, "Random Forests"), with ranks side by side.
* Independent references (not re-exported by ``interp_helpers``; import them from
  here): :func:`attribution_agreement` measures how two attributions of the same
  rows agree; :func:`eli5_weights` and :func:`decision_path_contributions` wrap
  ELI5 (``eli5.explain_weights``; ``eli5.explain_prediction``'s Saabas
  decision-path contributions for scikit-learn trees).

Feature matrices are pandas DataFrames with unique string column names and
finite numeric values; targets are finite and one per row. Every public
function checks this at the boundary and raises ``TypeError``/``ValueError``
naming the argument. Randomness comes only from the ``seed`` parameters.
Plots of these results live in :mod:`interp_helpers.plotting.tabular`.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..validation import check_positive_int
from ..validation import check_seed

__all__ = [
    "BaselineComparison",
    "CatBoostFit",
    "ShapCheck",
    "TreeShapResult",
    "brute_force_tree_shap",
    "check_shap_against_catboost",
    "compare_baselines",
    "importance_table",
    "mean_abs_interactions",
    "mean_abs_shap",
    "regression_metrics",
    "strongest_interactions",
    "train_catboost",
    "tree_shap",
    "attribution_agreement",
    "decision_path_contributions",
    "eli5_weights",
]

#: Default boosting settings of :func:`train_catboost`. ``depth=6`` is CatBoost's
#: default depth; 500 rounds of a 0.05 step are a moderate setting that trains in
#: about a second on a few hundred rows with two threads.
DEFAULT_CATBOOST_PARAMS: dict[str, Any] = {"iterations": 500, "depth": 6, "learning_rate": 0.05}

#: Parameters :func:`train_catboost` sets itself (through ``seed``/``thread_count``) or that
#: would break the train/test protocol; passing them in ``**params`` is an error.
_RESERVED_PARAMS = {
    "random_seed": "seed",
    "random_state": "seed",
    "thread_count": "thread_count",
    "eval_set": None,
    "cat_features": None,
    "verbose": None,
    "silent": None,
    "logging_level": None,
    "allow_writing_files": None,
    "train_dir": None,
}


# --------------------------------------------------------------------------- checks


def _check_features(X: Any, name: str = "X") -> pd.DataFrame:
    """Return ``X`` as a DataFrame of finite float64 columns, or raise naming ``name``."""
    if isinstance(X, pd.Series):
        raise TypeError(f"{name} must be a 2-D pandas DataFrame, got a Series {X.name!r}; use X.to_frame()")
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows, features), got an array of shape {X.shape}")
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (or a 2-D NumPy array), got {type(X).__name__}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {X.shape}")
    bad_names = [c for c in X.columns if not isinstance(c, str) or not c]
    if bad_names:
        raise TypeError(f"{name} column names must be non-empty strings, got {bad_names!r}")
    if X.columns.has_duplicates:
        raise ValueError(f"{name} has duplicate columns: {sorted(set(X.columns[X.columns.duplicated()]))!r}")
    non_numeric = [
        f"{c} ({X[c].dtype})"
        for c in X.columns
        if pd.api.types.is_bool_dtype(X[c]) or not pd.api.types.is_numeric_dtype(X[c])
    ]
    if non_numeric:
        raise TypeError(
            f"{name} must have numeric columns only (encode categories first), "
            f"got non-numeric columns: {', '.join(non_numeric)}"
        )
    values = X.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [str(c) for c, b in zip(X.columns, bad.any(axis=0)) if b]
        raise ValueError(f"{name} contains NaN or inf in columns {cols!r}; impute or drop them first")
    return pd.DataFrame(values, index=X.index, columns=list(X.columns))


def _check_target(y: Any, n: int, name: str = "y") -> pd.Series:
    """Return ``y`` as a float Series of length ``n`` with finite values, or raise naming ``name``."""
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D (one target per row), got a DataFrame of shape {y.shape}")
        y = y.iloc[:, 0]
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    if isinstance(y, np.ndarray):
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one target per row), got an array of shape {y.shape}")
        y = pd.Series(y, name="y")
    if not isinstance(y, pd.Series):
        raise TypeError(f"{name} must be a pandas Series or a 1-D array, got {type(y).__name__}")
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        raise TypeError(f"{name} must be numeric, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} must have one value per row of X ({n}), got {len(y)}")
    values = y.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name} contains NaN or inf at positions {bad[:10].tolist()}; drop those rows first")
    return pd.Series(values, index=y.index, name=y.name)


def _check_model(model: Any, name: str = "model") -> Any:
    """Check that ``model`` is a fitted ``catboost.CatBoostRegressor``."""
    from catboost import CatBoostRegressor

    if not isinstance(model, CatBoostRegressor):
        raise TypeError(f"{name} must be a fitted catboost.CatBoostRegressor, got {type(model).__name__}")
    if not model.is_fitted():
        raise ValueError(f"{name} is not fitted; call train_catboost or model.fit first")
    return model


def _model_frame(model: Any, X: Any, name: str = "X") -> pd.DataFrame:
    """Check ``X`` and put its columns in the model's feature order; missing/extra columns raise."""
    frame = _check_features(X, name)
    expected = list(model.feature_names_)
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the model's features {expected!r}; "
            f"missing columns {missing!r}, unexpected columns {extra!r}"
        )
    return frame[expected]


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_tolerance(value: Any, name: str = "tolerance") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class CatBoostFit:
    """A fitted ``CatBoostRegressor`` with the split it was trained and tested on.

    ``metrics`` holds RMSE and R^2 on both splits (keys ``rmse_train``,
    ``rmse_test``, ``r2_train``, ``r2_test``); ``params`` the CatBoost
    parameters used (without logging options).
    """

    model: Any
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    seed: int
    params: dict[str, Any]
    metrics: dict[str, float]
    dataset: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.X_train.columns)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Root-mean-squared error and coefficient of determination R^2 of ``y_pred`` against ``y_true``."""
    if not hasattr(y_true, "__len__"):
        raise TypeError(f"y_true must be a pandas Series or a 1-D array, got {type(y_true).__name__}")
    truth = _check_target(y_true, len(y_true), "y_true")
    pred = _check_target(y_pred, len(truth), "y_pred").to_numpy()
    t = truth.to_numpy()
    residual = float(np.sum((t - pred) ** 2))
    total = float(np.sum((t - t.mean()) ** 2))
    return {
        "rmse": math.sqrt(residual / len(t)),
        "r2": 1.0 - residual / total if total > 0 else float("nan"),
    }


def _split_metrics(
    model: Any, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, y_test: pd.Series
) -> dict[str, float]:
    train = regression_metrics(y_train, np.asarray(model.predict(X_train), dtype=np.float64))
    test = regression_metrics(y_test, np.asarray(model.predict(X_test), dtype=np.float64))
    return {
        "rmse_train": train["rmse"],
        "rmse_test": test["rmse"],
        "r2_train": train["r2"],
        "r2_test": test["r2"],
    }


def train_catboost(
    X: Any,
    y: Any,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    thread_count: int = 2,
    dataset: str = "",
    **params: Any,
) -> CatBoostFit:
    """Fit a ``CatBoostRegressor`` on a seeded random split and score it on the held-out part.

    The split is ``sklearn.model_selection.train_test_split(random_state=seed)``;
    CatBoost gets ``random_seed=seed`` and ``thread_count``, so the same
    arguments give the same model. The held-out part is used for nothing but
    scoring (no early stopping on it). Defaults: :data:`DEFAULT_CATBOOST_PARAMS`,
    overridable through ``**params`` (any ``CatBoostRegressor`` argument except
    the seed, thread count, logging and ``eval_set``/``cat_features``). Trees stay
    symmetric (``grow_policy="SymmetricTree"``, CatBoost's default): for
    ``Depthwise``/``Lossguide`` trees, CatBoost 1.2's native SHAP values -- which
    ``shap`` uses -- broke additivity by up to 0.05 in our tests, and
    :func:`brute_force_tree_shap` reads symmetric trees only.

    Parameters
    ----------
    X, y:
        Numeric features (DataFrame; NaN/inf rejected) and a finite target, one per row.
    test_size:
        Fraction of rows held out, strictly between 0 and 1.
    seed:
        Seeds the split and CatBoost (a non-negative int; ``None`` draws a fresh
        seed from OS entropy, recorded in the result's ``seed``).
    thread_count:
        Threads CatBoost may use (>= 1); 2 by default to suit small shared machines.
    dataset:
        A label carried along for plot titles, e.g. ``"Boston housing"``.
    """
    from catboost import CatBoostRegressor
    from sklearn.model_selection import train_test_split

    frame = _check_features(X, "X")
    target = _check_target(y, len(frame), "y")
    if target.nunique() < 2:
        raise ValueError(f"y must take at least two distinct values, got the constant {target.iloc[0]!r}")
    test_size = _check_fraction(test_size, "test_size")
    seed = check_seed(seed, "seed")
    thread_count = check_positive_int(thread_count, "thread_count")
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a string label, got {type(dataset).__name__}")
    for key in params:
        if key in _RESERVED_PARAMS:
            hint = f"; pass {_RESERVED_PARAMS[key]}= instead" if _RESERVED_PARAMS[key] else ""
            raise ValueError(f"params must not set {key!r}{hint}")
    if params.get("grow_policy", "SymmetricTree") != "SymmetricTree":
        raise ValueError(
            f"grow_policy must be 'SymmetricTree' (CatBoost's default), got {params['grow_policy']!r}: "
            "SHAP values of other tree shapes fail the additivity check in CatBoost 1.2"
        )
    n_test = math.ceil(test_size * len(frame))
    if n_test < 2 or len(frame) - n_test < 2:
        raise ValueError(
            f"test_size={test_size} leaves {len(frame) - n_test} training and {n_test} test rows "
            f"out of {len(frame)}; each split needs at least 2"
        )

    X_train, X_test, y_train, y_test = train_test_split(frame, target, test_size=test_size, random_state=seed)
    settings = {**DEFAULT_CATBOOST_PARAMS, **params}
    model = CatBoostRegressor(
        **settings,
        random_seed=seed,
        thread_count=thread_count,
        verbose=False,
        allow_writing_files=False,
    )
    model.fit(X_train, y_train)
    return CatBoostFit(
        model=model,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        seed=seed,
        params={**settings, "random_seed": seed, "thread_count": thread_count},
        metrics=_split_metrics(model, X_train, y_train, X_test, y_test),
        dataset=dataset,
    )


@dataclass(frozen=True)
class BaselineComparison:
    """Held-out and training scores of CatBoost and two simpler models on the same split.

    ``table`` has one row per model (``CatBoost``, ``Linear regression``,
    ``Decision tree (depth d)``) and columns ``rmse_train``, ``rmse_test``,
    ``r2_train``, ``r2_test``; ``models`` maps the same names to the fitted models.
    """

    table: pd.DataFrame
    models: dict[str, Any] = field(repr=False)


def compare_baselines(fit: CatBoostFit, *, tree_max_depth: int | None = 6, seed: int = 0) -> BaselineComparison:
    """Score ``fit.model`` against ordinary least squares and one CART tree on ``fit``'s split.

    The single tree (``sklearn.tree.DecisionTreeRegressor``) defaults to the
    depth of CatBoost's trees (6), so the table shows what boosting hundreds of
    such trees buys over one of them; ``tree_max_depth=None`` grows it until the
    leaves are pure. ``seed`` breaks the tree's ties between equally good splits.
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeRegressor

    if not isinstance(fit, CatBoostFit):
        raise TypeError(f"fit must be the CatBoostFit returned by train_catboost, got {type(fit).__name__}")
    if tree_max_depth is not None:
        tree_max_depth = check_positive_int(tree_max_depth, "tree_max_depth")
    seed = check_seed(seed, "seed")
    depth = "unlimited" if tree_max_depth is None else tree_max_depth
    models: dict[str, Any] = {
        "CatBoost": fit.model,
        "Linear regression": LinearRegression().fit(fit.X_train, fit.y_train),
        f"Decision tree (depth {depth})": DecisionTreeRegressor(max_depth=tree_max_depth, random_state=seed).fit(
            fit.X_train, fit.y_train
        ),
    }
    rows = {
        label: _split_metrics(model, fit.X_train, fit.y_train, fit.X_test, fit.y_test)
        for label, model in models.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")[["rmse_train", "rmse_test", "r2_train", "r2_test"]]
    table.index.name = "model"
    return BaselineComparison(table=table, models=models)


# --------------------------------------------------------------------------- TreeSHAP


@dataclass(frozen=True)
class TreeShapResult:
    """SHAP values of a tree model on the rows of ``data``.

    ``values`` (n, d) and ``expected_value`` satisfy
    ``values.sum(1) + expected_value == predictions`` (local accuracy);
    ``interaction_values`` (n, d, d), when computed, is symmetric with
    ``interaction_values.sum(2) == values``. ``model_name`` and ``dataset``
    label plots.
    """

    values: np.ndarray
    expected_value: float
    data: pd.DataFrame
    predictions: np.ndarray
    interaction_values: np.ndarray | None = None
    model_name: str = "CatBoostRegressor"
    dataset: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.data.columns)

    def to_explanation(self) -> Any:
        """The values as a ``shap.Explanation`` (what the ``shap.plots`` functions take)."""
        import shap

        return shap.Explanation(
            values=self.values,
            base_values=np.full(len(self.values), self.expected_value),
            data=self.data.to_numpy(),
            feature_names=list(self.feature_names),
        )


def _check_result(result: Any, name: str = "result", *, interactions: bool = False) -> TreeShapResult:
    if not isinstance(result, TreeShapResult):
        raise TypeError(f"{name} must be the TreeShapResult returned by tree_shap, got {type(result).__name__}")
    if interactions and result.interaction_values is None:
        raise ValueError(f"{name} has no interaction values; call tree_shap(..., interactions=True)")
    return result


def _check_result_rows(result: Any, frame: pd.DataFrame) -> TreeShapResult:
    """Check that ``result`` was computed on exactly the rows and columns of ``frame``."""
    result = _check_result(result)
    if result.values.shape != frame.shape or not np.array_equal(result.data.to_numpy(), frame.to_numpy()):
        raise ValueError(
            f"result was computed on other rows than X "
            f"(result data shape {result.data.shape}, X shape {frame.shape})"
        )
    return result


def tree_shap(model: Any, X: Any, *, interactions: bool = True, dataset: str = "") -> TreeShapResult:
    """SHAP values (and interaction values) of a CatBoost regressor with ``shap.TreeExplainer``.

    Uses the path-dependent TreeSHAP of Lundberg et al. (2020): the value of a
    feature subset S is the prediction averaged over the training data that
    reaches each leaf when the features outside S are unknown, so no background
    data set is needed. For CatBoost models ``shap`` (0.44+) computes this by
    calling CatBoost's own C++ implementation; :func:`brute_force_tree_shap` is
    an independent check.

    ``X`` must have exactly the model's feature columns (any order; they are
    reordered to the model's). Interaction values cost about ``d`` times more
    than SHAP values; ``interactions=False`` skips them. ``shap`` gives CatBoost
    no thread count, so this step uses all cores. Run
    :func:`check_shap_against_catboost` on models not trained with
    :func:`train_catboost`: for non-symmetric trees the values may not add up.
    """
    import shap

    model = _check_model(model)
    frame = _model_frame(model, X)
    if not isinstance(interactions, bool):
        raise TypeError(f"interactions must be True or False, got {interactions!r}")
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a string label, got {type(dataset).__name__}")
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(frame), dtype=np.float64)
    expected = float(np.ravel(explainer.expected_value)[0])
    inter = None
    if interactions:
        inter = np.asarray(explainer.shap_interaction_values(frame), dtype=np.float64)
    return TreeShapResult(
        values=values,
        expected_value=expected,
        data=frame,
        predictions=np.asarray(model.predict(frame), dtype=np.float64),
        interaction_values=inter,
        model_name=type(model).__name__,
        dataset=dataset,
    )


def mean_abs_shap(result: TreeShapResult) -> pd.Series:
    """Global importance: mean |SHAP value| per feature over ``result``'s rows, largest first."""
    result = _check_result(result)
    return (
        pd.Series(np.abs(result.values).mean(axis=0), index=list(result.feature_names), name="mean_abs_shap")
        .sort_values(ascending=False, kind="stable")
    )


def mean_abs_interactions(result: TreeShapResult) -> pd.DataFrame:
    """Mean |SHAP interaction value| over rows: a symmetric d x d frame.

    Off-diagonal entry (i, j) is the mean of |Phi_ij|, one half of the pair's
    interaction effect (the other half is Phi_ji); the diagonal is the mean
    |main effect| Phi_ii (Lundberg et al. 2020, Eq. 6-7).
    """
    result = _check_result(result, interactions=True)
    names = list(result.feature_names)
    return pd.DataFrame(np.abs(result.interaction_values).mean(axis=0), index=names, columns=names)


def strongest_interactions(result: TreeShapResult) -> pd.Series:
    """For each feature, the other feature with the largest mean |SHAP interaction value|.

    This is the exact counterpart of the heuristic ``shap.utils.approximate_interactions``
    that ``shap.plots.scatter`` uses to pick a colouring feature.
    """
    matrix = mean_abs_interactions(result)
    off = matrix.to_numpy(copy=True)
    if off.shape[0] < 2:
        raise ValueError("result must have at least two features to have interactions")
    np.fill_diagonal(off, -np.inf)
    partners = [matrix.columns[j] for j in off.argmax(axis=1)]
    return pd.Series(partners, index=matrix.index, name="strongest_partner")


# --------------------------------------------------------------------------- brute force reference


@dataclass(frozen=True)
class _ObliviousTree:
    columns: np.ndarray  # (depth,) column index split on at each level; level i decides bit i of the leaf index
    borders: np.ndarray  # (depth,) float32 thresholds; bit i = x[columns[i]] > borders[i]
    values: np.ndarray  # (2**depth,) leaf values
    weights: np.ndarray  # (2**depth,) training weight (cover) of each leaf


def _parse_model(model: Any) -> tuple[list[_ObliviousTree], float, float]:
    """Read the oblivious trees, scale and bias of a CatBoost model from its JSON dump."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.json")
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as fh:
            dump = json.load(fh)
    if "oblivious_trees" not in dump:
        raise ValueError("model must use symmetric (oblivious) trees, grow_policy='SymmetricTree'")
    float_features = dump["features_info"].get("float_features", [])
    flat = {f["feature_index"]: f["flat_feature_index"] for f in float_features}
    if dump["features_info"].get("categorical_features"):
        raise ValueError("model has categorical features; the brute-force reference handles numeric ones only")
    trees = []
    for tree in dump["oblivious_trees"]:
        splits = tree.get("splits", [])
        if any(s.get("split_type") != "FloatFeature" for s in splits):
            raise ValueError("model has non-numeric splits; the brute-force reference handles numeric ones only")
        values = np.asarray(tree["leaf_values"], dtype=np.float64)
        if values.size != 2 ** len(splits):
            raise ValueError("model has multi-dimensional leaves; only single-output regression is supported")
        trees.append(
            _ObliviousTree(
                columns=np.asarray([flat[s["float_feature_index"]] for s in splits], dtype=np.int64),
                borders=np.asarray([s["border"] for s in splits], dtype=np.float32),
                values=values,
                weights=np.asarray(tree["leaf_weights"], dtype=np.float64),
            )
        )
    scale, bias = dump.get("scale_and_bias", [1.0, [0.0]])
    bias = bias[0] if isinstance(bias, list) else bias
    return trees, float(scale), float(bias)


def _subset_values(tree: _ObliviousTree, x: np.ndarray, feats: list[int]) -> np.ndarray:
    """v(S) for every subset S of ``feats`` (bit a of the mask <=> feats[a] in S): (n, 2**k).

    Path-dependent expectation (Lundberg et al. 2020, Algorithm 1, EXPVALUE):
    walking from the root (the last split level) to the leaves, a split on a
    feature in S follows x; any other split sends the mass to both children in
    proportion to their training cover. A node without cover passes on nothing.
    """
    depth = len(tree.columns)
    n_leaves = 2**depth
    leaf = np.arange(n_leaves)
    leaf_bits = ((leaf[:, None] >> np.arange(depth)) & 1).astype(bool)  # (L, depth)
    x_bits = x[:, tree.columns] > tree.borders  # (n, depth)
    hot = leaf_bits[None, :, :] == x_bits[:, None, :]  # (n, L, depth)
    cold = np.empty((n_leaves, depth))
    for level in range(depth):
        child = leaf >> level  # bits level..depth-1 name the child below this split
        node = leaf >> (level + 1)
        child_cover = np.bincount(child, weights=tree.weights, minlength=n_leaves)[child]
        node_cover = np.bincount(node, weights=tree.weights, minlength=n_leaves)[node]
        cold[:, level] = np.divide(child_cover, node_cover, out=np.zeros(n_leaves), where=node_cover > 0)
    position = {f: a for a, f in enumerate(feats)}
    level_feature = np.asarray([position[c] for c in tree.columns])
    out = np.empty((x.shape[0], 2 ** len(feats)))
    for mask in range(2 ** len(feats)):
        in_s = ((mask >> level_feature) & 1).astype(bool)  # (depth,)
        mass = np.where(in_s[None, None, :], hot, cold[None, :, :]).prod(axis=2)  # (n, L)
        out[:, mask] = mass @ tree.values
    return out


def brute_force_tree_shap(model: Any, X: Any, *, interactions: bool = False) -> dict[str, Any]:
    """Exact path-dependent Shapley values of a CatBoost model by enumerating feature subsets.

    A reference for testing TreeSHAP, not a fast method. For each tree it
    evaluates the path-dependent value function v(S) (see :func:`tree_shap`) for
    every subset S of the at most ``depth`` features the tree splits on, then
    applies the Shapley formula phi_i = sum_S |S|!(k-|S|-1)!/k! [v(S+i) - v(S)]
    (Shapley 1953) and, with ``interactions``, the Shapley interaction index
    Phi_ij = sum_S |S|!(k-|S|-2)!/(2(k-1)!) [v(S+ij) - v(S+i) - v(S+j) + v(S)],
    Phi_ii = phi_i - sum_{j != i} Phi_ij (Lundberg et al. 2020, Eq. 6-7).
    Values add over trees (linearity), and a feature a tree never splits on is
    a null player of that tree, so per-tree enumeration is exact. Cost:
    O(trees * 2**depth * leaves * rows).

    The parser is checked, too: it must reproduce ``model.predict`` to 1e-9
    relative error, or ``RuntimeError`` is raised.

    Returns a dict with ``values`` (n, d), ``expected_value`` (float),
    ``predictions`` (n,) recomputed from the trees and, with ``interactions``,
    ``interaction_values`` (n, d, d).
    """
    model = _check_model(model)
    frame = _model_frame(model, X)
    if not isinstance(interactions, bool):
        raise TypeError(f"interactions must be True or False, got {interactions!r}")
    trees, scale, bias = _parse_model(model)
    x = frame.to_numpy(dtype=np.float32)  # CatBoost compares float32 features with float32 borders
    n, d = x.shape
    phi = np.zeros((n, d))
    inter = np.zeros((n, d, d)) if interactions else None
    expected = bias
    predictions = np.full(n, bias)
    for tree in trees:
        leaf_index = ((x[:, tree.columns] > tree.borders) * (1 << np.arange(len(tree.columns)))).sum(axis=1)
        predictions += scale * tree.values[leaf_index]
        feats = sorted(set(tree.columns.tolist()))
        k = len(feats)
        v = scale * _subset_values(tree, x, feats)
        expected += float(v[0, 0])
        masks = np.arange(2**k)
        sizes = np.asarray([bin(m).count("1") for m in masks])
        for a, fa in enumerate(feats):
            without = masks[(masks >> a) & 1 == 0]
            w = np.asarray([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in sizes[without]])
            phi[:, fa] += (v[:, without | (1 << a)] - v[:, without]) @ w
        if inter is not None:
            for a, fa in enumerate(feats):
                for b in range(a + 1, k):
                    fb = feats[b]
                    rest = masks[((masks >> a) & 1 == 0) & ((masks >> b) & 1 == 0)]
                    w = np.asarray(
                        [
                            math.factorial(s) * math.factorial(k - s - 2) / (2 * math.factorial(k - 1))
                            for s in sizes[rest]
                        ]
                    )
                    both = v[:, rest | (1 << a) | (1 << b)] - v[:, rest | (1 << a)] - v[:, rest | (1 << b)] + v[:, rest]
                    pair = both @ w
                    inter[:, fa, fb] += pair
                    inter[:, fb, fa] += pair
    reference = np.asarray(model.predict(frame), dtype=np.float64)
    if not np.allclose(predictions, reference, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(reference).max()))):
        raise RuntimeError(
            "could not reproduce model.predict from the model's JSON dump "
            f"(max difference {np.abs(predictions - reference).max():.3g}); the model format is not supported"
        )
    out: dict[str, Any] = {"values": phi, "expected_value": expected, "predictions": predictions}
    if inter is not None:
        idx = np.arange(d)
        inter[:, idx, idx] = phi - inter.sum(axis=2)  # diagonal still zero here, so sum(2) is off-diagonal only
        out["interaction_values"] = inter
    return out


# --------------------------------------------------------------------------- cross-checks


@dataclass(frozen=True)
class ShapCheck:
    """Largest absolute errors of the TreeSHAP cross-checks, and the tolerance they are held to.

    * ``native`` -- shap values vs ``model.get_feature_importance(type="ShapValues")``;
    * ``native_expected_value`` -- the same for the expected value (last column);
    * ``additivity`` -- ``values.sum(1) + expected_value`` vs ``model.predict``;
    * ``interaction_sums`` -- ``interaction_values.sum(2)`` vs ``values`` (NaN if not computed);
    * ``brute_force`` -- shap values vs :func:`brute_force_tree_shap` (NaN if skipped);
    * ``brute_force_interactions`` -- the same for interaction values (NaN if skipped).
    """

    native: float
    native_expected_value: float
    additivity: float
    interaction_sums: float
    brute_force: float
    brute_force_interactions: float
    tolerance: float
    n_rows: int

    _LABELS: ClassVar[dict[str, str]] = {
        "native": "shap == CatBoost ShapValues",
        "native_expected_value": "expected value == CatBoost's",
        "additivity": "sum(SHAP) + E[f] == prediction",
        "interaction_sums": "sum_j interaction[i, j] == SHAP[i]",
        "brute_force": "shap == brute-force Shapley",
        "brute_force_interactions": "interactions == brute-force index",
    }

    def errors(self) -> dict[str, float]:
        return {key: getattr(self, key) for key in self._LABELS}

    @property
    def ok(self) -> bool:
        """True if every check that ran is within ``tolerance``."""
        return all(math.isnan(e) or e <= self.tolerance for e in self.errors().values())

    def to_frame(self) -> pd.DataFrame:
        """One row per check: what is compared, the max abs error, and whether it passed (NaN: not run)."""
        rows = [
            {
                "check": self._LABELS[key],
                "max_abs_error": err,
                "passed": (np.nan if math.isnan(err) else bool(err <= self.tolerance)),
            }
            for key, err in self.errors().items()
        ]
        return pd.DataFrame(rows).set_index("check")


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def check_shap_against_catboost(
    model: Any,
    X: Any,
    *,
    result: TreeShapResult | None = None,
    brute_force: bool = True,
    tolerance: float = 1e-6,
) -> ShapCheck:
    """Cross-check TreeSHAP values of ``model`` on ``X`` against CatBoost and against first principles.

    ``result`` (from :func:`tree_shap` on the same ``X``) is computed if not
    given. The comparison with CatBoost's native ``ShapValues`` guards the
    wiring (row/column order, expected value), since ``shap`` delegates to the
    same C++ code for CatBoost models; additivity is the local-accuracy property
    of SHAP (Lundberg & Lee 2017, Property 1); the brute force
    (:func:`brute_force_tree_shap`, skipped with ``brute_force=False``) is an
    independent implementation of the same definition. Returns the errors;
    check ``.ok`` or ``.to_frame()``.
    """
    from catboost import Pool

    model = _check_model(model)
    frame = _model_frame(model, X)
    tolerance = _check_tolerance(tolerance)
    if not isinstance(brute_force, bool):
        raise TypeError(f"brute_force must be True or False, got {brute_force!r}")
    result = tree_shap(model, frame, interactions=True) if result is None else _check_result_rows(result, frame)
    threads = int(model.get_params().get("thread_count", -1) or -1)
    native = model.get_feature_importance(data=Pool(frame), type="ShapValues", thread_count=threads)
    predictions = np.asarray(model.predict(frame), dtype=np.float64)
    nan = float("nan")
    inter_sums = nan
    if result.interaction_values is not None:
        inter_sums = _max_abs(result.interaction_values.sum(axis=2), result.values)
    bf = bf_inter = nan
    if brute_force:
        reference = brute_force_tree_shap(model, frame, interactions=result.interaction_values is not None)
        bf = max(_max_abs(reference["values"], result.values), abs(reference["expected_value"] - result.expected_value))
        if result.interaction_values is not None:
            bf_inter = _max_abs(reference["interaction_values"], result.interaction_values)
    return ShapCheck(
        native=_max_abs(native[:, :-1], result.values),
        native_expected_value=_max_abs(native[:, -1], np.full(len(frame), result.expected_value)),
        additivity=_max_abs(result.values.sum(axis=1) + result.expected_value, predictions),
        interaction_sums=inter_sums,
        brute_force=bf,
        brute_force_interactions=bf_inter,
        tolerance=tolerance,
        n_rows=len(frame),
    )


# --------------------------------------------------------------------------- global importance


def importance_table(
    model: Any,
    X: Any,
    y: Any,
    *,
    result: TreeShapResult | None = None,
    n_repeats: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Global feature importance three ways, with ranks, largest mean |SHAP| first.

    Columns:

    * ``mean_abs_shap`` -- mean |SHAP value| on the rows of ``X`` (target units);
    * ``rms_shap`` -- root-mean-square SHAP value, which like ``PredictionValuesChange``
      weighs rare large effects more than ``mean_abs_shap`` does;
    * ``prediction_values_change`` -- CatBoost's ``PredictionValuesChange``: over
      the splits on the feature, the squared deviation of the two leaf values
      from their average, weighted by the leaves' *training* cover (CatBoost
      documentation, "Feature importance"); normalised to sum to 100;
    * ``permutation`` / ``permutation_std`` -- scikit-learn's
      ``permutation_importance`` on ``(X, y)``: the mean (and std over
      ``n_repeats`` shuffles) increase in RMSE when one column is shuffled
      (Breiman 2001; Fisher, Rudin & Dominici 2019);
    * ``*_share`` -- each measure as a percentage of its column total, to put
      them on one scale;
    * ``rank_shap``, ``rank_pvc``, ``rank_permutation`` -- 1 = most important.

    ``seed`` seeds the shuffles (through ``random_state``; the global RNG is not used).
    """
    from sklearn.inspection import permutation_importance

    model = _check_model(model)
    frame = _model_frame(model, X)
    target = _check_target(y, len(frame), "y")
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    seed = check_seed(seed, "seed")
    result = tree_shap(model, frame, interactions=False) if result is None else _check_result_rows(result, frame)
    names = list(frame.columns)
    perm = permutation_importance(
        model,
        frame,
        target,
        scoring="neg_root_mean_squared_error",
        n_repeats=n_repeats,
        random_state=seed,
    )
    table = pd.DataFrame(
        {
            "mean_abs_shap": np.abs(result.values).mean(axis=0),
            "rms_shap": np.sqrt((result.values**2).mean(axis=0)),
            "prediction_values_change": np.asarray(model.get_feature_importance(type="PredictionValuesChange")),
            "permutation": perm.importances_mean,
            "permutation_std": perm.importances_std,
        },
        index=pd.Index(names, name="feature"),
    )
    measures = (("mean_abs_shap", "shap"), ("prediction_values_change", "pvc"), ("permutation", "permutation"))
    for column, short in measures:
        total = table[column].sum()
        table[f"{short}_share"] = 100.0 * table[column] / total if total != 0 else np.nan
    for column, short in measures:
        table[f"rank_{short}"] = table[column].rank(ascending=False, method="min").astype(int)
    return table.sort_values("mean_abs_shap", ascending=False, kind="stable")


# --------------------------------------------------------------------------- independent references


def attribution_agreement(reference: Any, other: Any, *, feature_names: Any = None) -> pd.Series:
    """How closely two attributions of the same rows agree, as a Series of named numbers.

    ``reference`` and ``other`` are ``(rows, features)`` arrays (or DataFrames, or
    ``TreeShapResult``/``shap.Explanation`` objects: their ``.values``) of the same shape.
    Returns

    * ``max_abs_diff``, ``mean_abs_diff`` -- over all entries, in target units;
    * ``mean_abs_reference`` -- the scale to read those against;
    * ``pearson_r`` -- correlation of all entries;
    * ``rank_corr_importance`` -- Spearman correlation of the per-feature mean |values|
      (do the two agree on the global ranking?);
    * ``same_top_feature`` -- share of rows whose largest |value| is on the same feature.
    """
    from scipy.stats import spearmanr

    def values(a: Any, name: str) -> np.ndarray:
        a = getattr(a, "values", a)
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a numeric (rows, features) array, got {type(a).__name__}") from exc
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 2:
            raise ValueError(f"{name} must be 2-D (rows, features >= 2), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
        return arr

    a, b = values(reference, "reference"), values(other, "other")
    if a.shape != b.shape:
        raise ValueError(f"reference and other must have the same shape, got {a.shape} and {b.shape}")
    if feature_names is not None and len(list(feature_names)) != a.shape[1]:
        raise ValueError(f"feature_names must have {a.shape[1]} entries, got {len(list(feature_names))}")
    diff = np.abs(a - b)
    flat_a, flat_b = a.ravel(), b.ravel()
    constant = flat_a.std() == 0 or flat_b.std() == 0
    return pd.Series(
        {
            "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()),
            "mean_abs_reference": float(np.abs(a).mean()),
            "pearson_r": float("nan") if constant else float(np.corrcoef(flat_a, flat_b)[0, 1]),
            "rank_corr_importance": float(spearmanr(np.abs(a).mean(axis=0), np.abs(b).mean(axis=0))[0]),
            "same_top_feature": float((np.abs(a).argmax(axis=1) == np.abs(b).argmax(axis=1)).mean()),
        },
        name="agreement",
    )


def eli5_weights(model: Any, feature_names: Any = None) -> pd.Series:
    """ELI5's global weights of a model (``eli5.explain_weights``), as a Series feature -> weight.

    For a CatBoost model ELI5 reports CatBoost's own ``PredictionValuesChange``
    importances rescaled to sum to 1 (``eli5/catboost.py``); for scikit-learn
    trees and forests, the impurity-based ``feature_importances_``. The Series
    has one entry per feature (``feature_names`` or the model's), largest first.
    """
    import eli5

    if model is None or not hasattr(model, "predict"):
        raise TypeError(f"model must be a fitted model that ELI5 supports, got {type(model).__name__}")
    names = _feature_names(model, feature_names)
    explanation = eli5.explain_weights(model, feature_names=names, top=None)
    if explanation.error or explanation.feature_importances is None:
        raise TypeError(f"model: ELI5 cannot explain the weights of {type(model).__name__}: {explanation.error}")
    weights = {fw.feature: float(fw.weight) for fw in explanation.feature_importances.importances}
    series = pd.Series({n: weights.get(n, 0.0) for n in names}, name="eli5_weight")
    series.index.name = "feature"
    return series.sort_values(ascending=False, kind="stable")


def _feature_names(model: Any, feature_names: Any) -> list[str]:
    if feature_names is None:
        feature_names = getattr(model, "feature_names_", None)
        if feature_names is None:
            feature_names = getattr(model, "feature_names_in_", None)
    if feature_names is None:
        raise ValueError("feature_names must be given: the model does not record its feature names")
    names = [str(n) for n in feature_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"feature_names must be non-empty and unique, got {names!r}")
    return names


def _check_sklearn_tree_regressor(model: Any, name: str = "model") -> Any:
    from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

    kinds = (DecisionTreeRegressor, ExtraTreeRegressor, RandomForestRegressor, ExtraTreesRegressor,
             GradientBoostingRegressor)
    if not isinstance(model, kinds):
        raise TypeError(
            f"{name} must be a fitted scikit-learn tree or tree-ensemble regressor "
            f"({', '.join(k.__name__ for k in kinds)}), got {type(model).__name__}"
        )
    if not (hasattr(model, "tree_") or hasattr(model, "estimators_")):
        raise ValueError(f"{name} is not fitted; call {name}.fit first")
    return model


def decision_path_contributions(model: Any, X: Any) -> pd.DataFrame:
    """Per-row decision-path ("Saabas") contributions from ``eli5.explain_prediction``.

    For each row, ELI5 follows the row's path through every tree and credits each
    split's change of the node mean to the feature split on (Saabas 2014, the
    ``treeinterpreter`` method; ELI5 calls it ``feature contributions``). The
    contributions plus ``<BIAS>`` (the root mean) add up to the prediction, but
    they are *not* Shapley values: they depend on where in the tree a feature is
    split, and they are inconsistent (Lundberg, Erion & Lee 2018, "Consistent
    individualized feature attribution for tree ensembles", Fig. 1).

    Args:
        model: a fitted scikit-learn tree or tree-ensemble regressor.
        X: DataFrame with the model's columns (``feature_names_in_``, in order; for a
            model fitted on an array, any names for its ``n_features_in_`` columns).

    Returns:
        DataFrame, one row per row of ``X`` (same index), one column per feature,
        then ``<BIAS>``.
    """
    import warnings

    import eli5

    model = _check_sklearn_tree_regressor(model)
    frame = _check_features(X, "X")
    names = [str(n) for n in getattr(model, "feature_names_in_", frame.columns)]
    if list(frame.columns) != names:
        raise ValueError(f"X must have exactly the model's columns in order {names!r}, got {list(frame.columns)!r}")
    if getattr(model, "n_features_in_", len(names)) != len(names):
        raise ValueError(f"X must have the model's {model.n_features_in_} columns, got {len(names)}")
    rows = []
    with warnings.catch_warnings():
        # ELI5 0.16 passes a NumPy row to a model fitted on a DataFrame: scikit-learn warns once per tree.
        warnings.simplefilter("ignore", UserWarning)
        for values in frame.to_numpy():
            explanation = eli5.explain_prediction(model, values, feature_names=names)
            weights = {fw.feature: fw.weight for fw in explanation.targets[0].feature_weights.pos}
            weights.update({fw.feature: fw.weight for fw in explanation.targets[0].feature_weights.neg})
            rows.append([float(weights.get(n, 0.0)) for n in names] + [float(weights.get("<BIAS>", 0.0))])
    return pd.DataFrame(rows, index=frame.index, columns=[*names, "<BIAS>"])
