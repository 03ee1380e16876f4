"""Gradient-boosted trees on a table, explained with TreeSHAP (notebook 04): fit CatBoost and baselines, compute
SHAP and interaction values, check them against CatBoost and a brute-force Shapley computation, compare them with
other importances (permutation, PredictionValuesChange, ELI5, Saabas). Feature tables are DataFrames with unique
string column names and finite numbers. Plots live in :mod:`interp_helpers.tree_plots`."""
from __future__ import annotations

import json
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import eli5
import numpy as np
import pandas as pd
import shap
from catboost import CatBoostRegressor, Pool
from scipy import stats
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

from ._common import DEFAULT_SEED, check_flag, check_int, check_number, check_seed

#: Boosting settings of :func:`train_catboost`: CatBoost's default depth 6, and 500 rounds of a 0.05 step.
_CATBOOST_DEFAULTS: dict[str, Any] = {"iterations": 500, "depth": 6, "learning_rate": 0.05}
_SET_HERE = ("random_seed", "random_state", "eval_set", "cat_features", "verbose", "silent", "logging_level",
             "allow_writing_files", "train_dir")
_SKLEARN_TREES = (DecisionTreeRegressor, ExtraTreeRegressor, RandomForestRegressor, ExtraTreesRegressor,
                  GradientBoostingRegressor)


def _features(X: Any, name: str = "X") -> pd.DataFrame:
    """``X`` as a DataFrame of float64 columns, if it has unique string column names and finite numbers."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (rows x named features), got {type(X).__name__}")
    bad_names = [c for c in X.columns if not isinstance(c, str) or not c]
    if bad_names:
        raise TypeError(f"{name} column names must be non-empty strings, got {bad_names!r}")
    if X.columns.has_duplicates:
        raise ValueError(f"{name} has duplicate columns: {sorted(set(X.columns[X.columns.duplicated()]))!r}")
    non_numeric = [f"{c} ({X[c].dtype})" for c in X.columns
                   if pd.api.types.is_bool_dtype(X[c]) or not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise TypeError(f"{name} must have numeric columns only (encode categories first), got {non_numeric}")
    values = X.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=0)
    if bad.any():
        raise ValueError(f"{name} contains NaN or inf in columns {list(X.columns[bad])!r}; impute or drop them")
    return pd.DataFrame(values, index=X.index, columns=list(X.columns))


def _target(y: Any, n: int | None, name: str = "y") -> pd.Series:
    """``y`` as a float Series (from a Series, array or list), if it is 1-D, numeric, finite and ``n`` long."""
    if not isinstance(y, pd.Series):
        array = np.asarray(y)
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one target per row), got shape {array.shape}")
        y = pd.Series(array, name="y")
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        raise TypeError(f"{name} must be numeric, got dtype {y.dtype}")
    if n is not None and len(y) != n:
        raise ValueError(f"{name} must have one value per row of X ({n}), got {len(y)}")
    values = y.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name} contains NaN or inf at positions {bad[:10].tolist()}; drop those rows first")
    return pd.Series(values, index=y.index, name=y.name)


def _model_frame(model: Any, X: Any) -> pd.DataFrame:
    """Check that ``model`` is a fitted CatBoostRegressor and ``X`` has its features; ``X`` in the model's order."""
    if not isinstance(model, CatBoostRegressor):
        raise TypeError(f"model must be a fitted catboost.CatBoostRegressor, got {type(model).__name__}")
    if not model.is_fitted():
        raise ValueError("model is not fitted; call train_catboost or model.fit first")
    frame = _features(X)
    expected = list(model.feature_names_)
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise ValueError(f"X must have exactly the model's features {expected!r}; "
                         f"missing columns {missing!r}, unexpected columns {extra!r}")
    return frame[expected]


def _seed(seed: Any) -> int:
    """The checked seed modulo 2**32, the range scikit-learn takes (``None``: a fresh one)."""
    return check_seed(seed) % 2**32


def check_result(result: Any, *, interactions: bool = False, data: pd.DataFrame | None = None) -> TreeShapResult:
    """``result`` if it is a :class:`TreeShapResult` (with interaction values; computed on the rows ``data``)."""
    if not isinstance(result, TreeShapResult):
        raise TypeError(f"result must be the TreeShapResult returned by tree_shap, got {type(result).__name__}")
    if interactions and result.interaction_values is None:
        raise ValueError("result has no interaction values; call tree_shap(..., interactions=True)")
    if data is not None and (result.values.shape != data.shape
                             or not np.array_equal(result.data.to_numpy(), data.to_numpy())):
        raise ValueError(f"result was computed on other rows than X ({result.data.shape} vs {data.shape})")
    return result


@dataclass(frozen=True)
class CatBoostFit:
    """A fitted ``CatBoostRegressor``, its train/test split, its parameters and seed, and its scores
    (``metrics``: ``rmse_train``, ``rmse_test``, ``r2_train``, ``r2_test``); ``dataset`` labels plots."""

    model: CatBoostRegressor
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    seed: int
    params: dict[str, Any]
    metrics: dict[str, float]
    dataset: str = ""


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Root-mean-squared error and coefficient of determination R^2 of ``y_pred`` against ``y_true``."""
    truth = _target(y_true, None, "y_true").to_numpy()
    pred = _target(y_pred, len(truth), "y_pred").to_numpy()
    residual = float(np.sum((truth - pred) ** 2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {"rmse": math.sqrt(residual / len(truth)), "r2": 1.0 - residual / total if total > 0 else float("nan")}


def _split_metrics(model: Any, X_train: Any, X_test: Any, y_train: Any, y_test: Any) -> dict[str, float]:
    train = regression_metrics(y_train, np.asarray(model.predict(X_train), dtype=np.float64))
    test = regression_metrics(y_test, np.asarray(model.predict(X_test), dtype=np.float64))
    return {"rmse_train": train["rmse"], "rmse_test": test["rmse"], "r2_train": train["r2"], "r2_test": test["r2"]}


def train_catboost(X: Any, y: Any, *, test_size: float = 0.25, seed: int | None = DEFAULT_SEED,
                   thread_count: int = 2, dataset: str = "", **params: Any) -> CatBoostFit:
    """Fit a ``CatBoostRegressor`` (Prokhorenkova et al. 2018) on a seeded split; score it on the held-out part.

    ``seed`` seeds the split and CatBoost, so the same arguments give the same model. ``**params`` overrides
    the defaults (500 rounds, depth 6, learning rate 0.05) with any ``CatBoostRegressor`` argument but the
    seed, threads, logging, ``eval_set`` and ``cat_features``. Trees stay symmetric: CatBoost's SHAP values
    of other tree shapes do not add up, and :func:`brute_force_tree_shap` reads symmetric trees only.
    """
    frame = _features(X)
    target = _target(y, len(frame))
    if target.nunique() < 2:
        raise ValueError(f"y must take at least two distinct values, got the constant {target.iloc[0]!r}")
    test_size = check_number(test_size, "test_size", 0.0, 1.0)
    seed, thread_count = _seed(seed), check_int(thread_count, "thread_count")
    for key in params:
        if key in _SET_HERE:
            raise ValueError(f"params must not set {key!r}" + ("; pass seed= instead" if "random" in key else ""))
    if params.get("grow_policy", "SymmetricTree") != "SymmetricTree":
        raise ValueError(f"grow_policy must be 'SymmetricTree' (CatBoost's default), got {params['grow_policy']!r}: "
                         "SHAP values of other tree shapes fail the additivity check")
    n_test = math.ceil(test_size * len(frame))
    if n_test < 2 or len(frame) - n_test < 2:
        raise ValueError(f"test_size={test_size} leaves {len(frame) - n_test} training and {n_test} test rows "
                         f"out of {len(frame)}; each split needs at least 2")
    X_train, X_test, y_train, y_test = train_test_split(frame, target, test_size=test_size, random_state=seed)
    settings = {**_CATBOOST_DEFAULTS, **params, "random_seed": seed, "thread_count": thread_count}
    model = CatBoostRegressor(**settings, verbose=False, allow_writing_files=False)
    model.fit(X_train, y_train)
    metrics = _split_metrics(model, X_train, X_test, y_train, y_test)
    return CatBoostFit(model, X_train, X_test, y_train, y_test, seed, settings, metrics, dataset)


@dataclass(frozen=True)
class BaselineComparison:
    """Scores of CatBoost and two simpler models on one split: ``table`` has a row per model (``CatBoost``,
    ``Linear regression``, ``Decision tree (depth d)``) and the columns of ``CatBoostFit.metrics``."""

    table: pd.DataFrame
    models: dict[str, Any] = field(repr=False)


def compare_baselines(fit: CatBoostFit, *, tree_max_depth: int | None = 6,
                      seed: int | None = DEFAULT_SEED) -> BaselineComparison:
    """Score ``fit.model`` against least squares and one CART tree (Breiman et al. 1984) on ``fit``'s split.

    The tree defaults to the depth of CatBoost's trees (6), so the table shows what boosting hundreds of
    them buys over one; ``tree_max_depth=None`` grows it until the leaves are pure. ``seed`` breaks the
    tree's ties between equally good splits.
    """
    if not isinstance(fit, CatBoostFit):
        raise TypeError(f"fit must be the CatBoostFit returned by train_catboost, got {type(fit).__name__}")
    tree_max_depth = None if tree_max_depth is None else check_int(tree_max_depth, "tree_max_depth")
    tree = DecisionTreeRegressor(max_depth=tree_max_depth, random_state=_seed(seed))
    models = {
        "CatBoost": fit.model,
        "Linear regression": LinearRegression().fit(fit.X_train, fit.y_train),
        f"Decision tree (depth {tree_max_depth or 'unlimited'})": tree.fit(fit.X_train, fit.y_train),
    }
    split = (fit.X_train, fit.X_test, fit.y_train, fit.y_test)
    table = pd.DataFrame.from_dict({name: _split_metrics(m, *split) for name, m in models.items()}, orient="index")
    return BaselineComparison(table=table.rename_axis("model"), models=models)


@dataclass(frozen=True)
class TreeShapResult:
    """SHAP values (n, d) of a tree model on the rows of ``data``; with ``expected_value`` they add up to
    ``predictions``. ``interaction_values`` (n, d, d), if computed, sum over the last axis to ``values``."""

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

    def to_explanation(self) -> shap.Explanation:
        """The values as a ``shap.Explanation`` (what the ``shap.plots`` functions take)."""
        return shap.Explanation(values=self.values, base_values=np.full(len(self.values), self.expected_value),
                                data=self.data.to_numpy(), feature_names=list(self.feature_names))


def tree_shap(model: Any, X: Any, *, interactions: bool = True, dataset: str = "") -> TreeShapResult:
    """SHAP values (Lundberg & Lee 2017) and interaction values of a CatBoost regressor by ``shap.TreeExplainer``.

    Path-dependent TreeSHAP (Lundberg et al. 2020, "From local explanations to global understanding with
    explainable AI for trees"): v(S) averages the prediction over the training data reaching each leaf when
    the features outside S are unknown. ``X`` has the model's columns in any order.
    """
    frame = _model_frame(model, X)
    explainer = shap.TreeExplainer(model)
    inter = explainer.shap_interaction_values(frame) if check_flag(interactions, "interactions") else None
    return TreeShapResult(np.asarray(explainer.shap_values(frame), dtype=np.float64),
                          float(np.ravel(explainer.expected_value)[0]), frame,
                          np.asarray(model.predict(frame), dtype=np.float64),
                          None if inter is None else np.asarray(inter, dtype=np.float64), type(model).__name__, dataset)


def mean_abs_shap(result: TreeShapResult) -> pd.Series:
    """Global importance: mean |SHAP value| per feature over ``result``'s rows, largest first."""
    result = check_result(result)
    series = pd.Series(np.abs(result.values).mean(axis=0), index=list(result.feature_names), name="mean_abs_shap")
    return series.sort_values(ascending=False, kind="stable")


def mean_abs_interactions(result: TreeShapResult) -> pd.DataFrame:
    """Mean |SHAP interaction value| over rows, a symmetric d x d frame (Lundberg et al. 2020, Eq. 6-7).

    Off-diagonal entry (i, j) is the mean of |Phi_ij|, half of the pair's interaction effect (the other
    half is Phi_ji); the diagonal is the mean |main effect| Phi_ii.
    """
    result = check_result(result, interactions=True)
    names = list(result.feature_names)
    return pd.DataFrame(np.abs(result.interaction_values).mean(axis=0), index=names, columns=names)


def strongest_interactions(result: TreeShapResult) -> pd.Series:
    """For each feature, the other feature with the largest mean |SHAP interaction value|.

    The exact counterpart of the heuristic ``shap.utils.approximate_interactions``, which
    ``shap.plots.scatter`` uses to pick a colouring feature.
    """
    matrix = mean_abs_interactions(result)
    off = matrix.to_numpy(copy=True)
    np.fill_diagonal(off, -np.inf)
    return pd.Series(matrix.columns[off.argmax(axis=1)], index=matrix.index, name="strongest_partner")


class _ObliviousTree(NamedTuple):
    columns: np.ndarray  # (depth,) column split on at each level; level i decides bit i of the leaf index
    borders: np.ndarray  # (depth,) float32 thresholds; bit i = x[columns[i]] > borders[i]
    values: np.ndarray  # (2**depth,) leaf values
    weights: np.ndarray  # (2**depth,) training weight (cover) of each leaf


def _parse_model(model: CatBoostRegressor) -> tuple[list[_ObliviousTree], float, float]:
    """The oblivious trees, scale and bias of a CatBoost model, read from its JSON dump."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_model(str(Path(tmp, "model.json")), format="json")
        dump = json.loads(Path(tmp, "model.json").read_text(encoding="utf-8"))
    if "oblivious_trees" not in dump:
        raise ValueError("model must use symmetric (oblivious) trees, grow_policy='SymmetricTree'")
    flat = {f["feature_index"]: f["flat_feature_index"] for f in dump["features_info"].get("float_features", [])}
    trees = []
    for tree in dump["oblivious_trees"]:
        splits = tree.get("splits", [])
        values = np.asarray(tree["leaf_values"], dtype=np.float64)
        if any(s.get("split_type") != "FloatFeature" for s in splits) or values.size != 2 ** len(splits):
            raise ValueError("model must be a single-output regressor with numeric splits only")
        trees.append(_ObliviousTree(np.asarray([flat[s["float_feature_index"]] for s in splits], dtype=np.int64),
                                    np.asarray([s["border"] for s in splits], dtype=np.float32),
                                    values, np.asarray(tree["leaf_weights"], dtype=np.float64)))
    scale, bias = dump.get("scale_and_bias", [1.0, [0.0]])
    return trees, float(scale), float(bias[0] if isinstance(bias, list) else bias)


def _subset_values(tree: _ObliviousTree, x: np.ndarray, feats: list[int]) -> np.ndarray:
    """v(S) for every subset S of ``feats`` (bit a of the mask <=> feats[a] in S): (n, 2**k). Path-dependent
    expectation (Lundberg et al. 2020, Algorithm 1): a split on a feature in S follows x; any other split
    sends the mass to both children in proportion to their training cover."""
    depth = len(tree.columns)
    leaf = np.arange(2**depth)
    leaf_bits = ((leaf[:, None] >> np.arange(depth)) & 1).astype(bool)  # (L, depth)
    hot = leaf_bits[None] == (x[:, tree.columns] > tree.borders)[:, None, :]  # (n, L, depth): x goes this way
    cold = np.empty((leaf.size, depth))
    for level in range(depth):
        child, node = leaf >> level, leaf >> (level + 1)  # the child below this split and the split's node
        child_cover = np.bincount(child, weights=tree.weights, minlength=leaf.size)[child]
        node_cover = np.bincount(node, weights=tree.weights, minlength=leaf.size)[node]
        cold[:, level] = np.divide(child_cover, node_cover, out=np.zeros(leaf.size), where=node_cover > 0)
    level_feature = np.asarray([feats.index(c) for c in tree.columns])
    out = np.empty((x.shape[0], 2 ** len(feats)))
    for mask in range(2 ** len(feats)):
        in_s = ((mask >> level_feature) & 1).astype(bool)  # (depth,)
        out[:, mask] = np.where(in_s, hot, cold[None]).prod(axis=2) @ tree.values
    return out


def brute_force_tree_shap(model: Any, X: Any, *, interactions: bool = True) -> TreeShapResult:
    """Exact path-dependent Shapley values of a CatBoost model by enumerating feature subsets: a test reference.

    For each tree, v(S) of :func:`tree_shap` for every subset S of the k features the tree splits on, then the
    Shapley formula phi_i = sum_S |S|!(k-|S|-1)!/k! [v(S+i) - v(S)] (Shapley 1953) and the interaction index
    Phi_ij = sum_S |S|!(k-|S|-2)!/(2(k-1)!) [v(S+ij) - v(S+i) - v(S+j) + v(S)], Phi_ii = phi_i - sum_j Phi_ij
    (Lundberg et al. 2020, Eq. 6-7). Values add over trees, and a feature a tree never splits on is a null
    player of it. ``RuntimeError`` if the parsed trees do not reproduce ``model.predict``.
    """
    frame = _model_frame(model, X)
    interactions = check_flag(interactions, "interactions")
    trees, scale, bias = _parse_model(model)
    x = frame.to_numpy(dtype=np.float32)  # CatBoost compares float32 features with float32 borders
    n, d = x.shape
    phi, inter = np.zeros((n, d)), np.zeros((n, d, d))
    expected, predictions = bias, np.full(n, bias)
    f = math.factorial
    for tree in trees:
        bits = (x[:, tree.columns] > tree.borders) * (1 << np.arange(len(tree.columns)))
        predictions += scale * tree.values[bits.sum(axis=1)]
        feats = sorted(set(tree.columns.tolist()))
        k = len(feats)
        v = scale * _subset_values(tree, x, feats)
        expected += float(v[0, 0])
        masks = np.arange(2**k)
        sizes = np.asarray([int(m).bit_count() for m in masks])
        w_one = np.asarray([f(s) * f(k - s - 1) / f(k) for s in range(k)])  # Shapley weights by |S|
        w_pair = np.asarray([f(s) * f(k - s - 2) / (2 * f(k - 1)) for s in range(k - 1)])
        for a, fa in enumerate(feats):
            without = masks[(masks >> a) & 1 == 0]
            phi[:, fa] += (v[:, without | (1 << a)] - v[:, without]) @ w_one[sizes[without]]
            for b in range(a + 1, k) if interactions else ():
                rest = without[(without >> b) & 1 == 0]
                both = v[:, rest | (1 << a) | (1 << b)] - v[:, rest | (1 << a)] - v[:, rest | (1 << b)] + v[:, rest]
                pair = both @ w_pair[sizes[rest]]
                inter[:, fa, feats[b]] += pair
                inter[:, feats[b], fa] += pair
    reference = np.asarray(model.predict(frame), dtype=np.float64)
    if not np.allclose(predictions, reference, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(reference).max()))):
        raise RuntimeError("could not reproduce model.predict from the model's JSON dump (max difference "
                           f"{np.abs(predictions - reference).max():.3g}); this model format is not supported")
    if interactions:
        inter[:, np.arange(d), np.arange(d)] = phi - inter.sum(axis=2)  # the diagonal is still zero here
    return TreeShapResult(phi, expected, frame, predictions, inter if interactions else None, type(model).__name__)


@dataclass(frozen=True)
class ShapCheck:
    """Largest absolute errors of the TreeSHAP cross-checks (NaN: not run; ``_LABELS`` says what each compares),
    and the tolerance they are held to."""

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
        rows = [{"check": self._LABELS[key], "max_abs_error": err,
                 "passed": np.nan if math.isnan(err) else bool(err <= self.tolerance)}
                for key, err in self.errors().items()]
        return pd.DataFrame(rows).set_index("check")


def _max_abs(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def check_shap_against_catboost(model: Any, X: Any, *, result: TreeShapResult | None = None,
                                brute_force: bool = True, tolerance: float = 1e-6) -> ShapCheck:
    """Cross-check TreeSHAP values of ``model`` on ``X`` against CatBoost and against first principles.

    ``result`` (:func:`tree_shap` on the same ``X``) is computed if not given. CatBoost's ``ShapValues`` guard
    the wiring (row and column order); additivity is local accuracy (Lundberg & Lee 2017, Property 1); the
    brute force (skipped with ``brute_force=False``) is independent. ``tolerance`` (> 0) decides ``.ok``.
    """
    frame = _model_frame(model, X)
    brute_force = check_flag(brute_force, "brute_force")
    if check_number(tolerance, "tolerance", low=0.0) == 0:
        raise ValueError("tolerance must be a finite number > 0, got 0")
    result = tree_shap(model, frame) if result is None else check_result(result, data=frame)
    threads = int(model.get_params().get("thread_count", -1) or -1)
    native = model.get_feature_importance(data=Pool(frame), type="ShapValues", thread_count=threads)
    has_inter, nan = result.interaction_values is not None, float("nan")
    bf = bf_inter = nan
    if brute_force:
        reference = brute_force_tree_shap(model, frame, interactions=has_inter)
        bf = max(_max_abs(reference.values, result.values), abs(reference.expected_value - result.expected_value))
        bf_inter = _max_abs(reference.interaction_values, result.interaction_values) if has_inter else nan
    return ShapCheck(
        native=_max_abs(native[:, :-1], result.values),
        native_expected_value=_max_abs(native[:, -1], result.expected_value),
        additivity=_max_abs(result.values.sum(axis=1) + result.expected_value, model.predict(frame)),
        interaction_sums=_max_abs(result.interaction_values.sum(axis=2), result.values) if has_inter else nan,
        brute_force=bf, brute_force_interactions=bf_inter, tolerance=float(tolerance), n_rows=len(frame))


def importance_table(model: Any, X: Any, y: Any, *, result: TreeShapResult | None = None, n_repeats: int = 10,
                     seed: int | None = DEFAULT_SEED) -> pd.DataFrame:
    """Global feature importance three ways, with ranks, largest mean |SHAP| first.

    Columns: ``mean_abs_shap``, ``rms_shap`` (on the rows of ``X``); ``prediction_values_change`` (CatBoost's
    ``PredictionValuesChange``, from the leaves' training cover, summing to 100); ``permutation`` and
    ``permutation_std`` (the RMSE increase when a column is shuffled, over ``n_repeats`` seeded shuffles;
    Breiman 2001); ``shap_share``, ``pvc_share``, ``permutation_share`` (% of each measure's total); and
    ``rank_shap``, ``rank_pvc``, ``rank_permutation`` (1 = most important).
    """
    frame = _model_frame(model, X)
    target = _target(y, len(frame))
    n_repeats, seed = check_int(n_repeats, "n_repeats"), _seed(seed)
    result = tree_shap(model, frame, interactions=False) if result is None else check_result(result, data=frame)
    perm = permutation_importance(model, frame, target, scoring="neg_root_mean_squared_error",
                                  n_repeats=n_repeats, random_state=seed)
    table = pd.DataFrame({
        "mean_abs_shap": np.abs(result.values).mean(axis=0),
        "rms_shap": np.sqrt((result.values**2).mean(axis=0)),
        "prediction_values_change": np.asarray(model.get_feature_importance(type="PredictionValuesChange")),
        "permutation": perm.importances_mean,
        "permutation_std": perm.importances_std,
    }, index=pd.Index(list(frame.columns), name="feature"))
    measures = {"shap": "mean_abs_shap", "pvc": "prediction_values_change", "permutation": "permutation"}
    table = table.assign(**{f"{k}_share": 100.0 * table[c] / table[c].sum() for k, c in measures.items()},
                         **{f"rank_{k}": table[c].rank(ascending=False, method="min").astype(int)
                            for k, c in measures.items()})
    return table.sort_values("mean_abs_shap", ascending=False, kind="stable")


def _attributions(a: Any, name: str) -> np.ndarray:
    a = getattr(a, "values", a)  # a TreeShapResult, shap.Explanation or DataFrame: its values
    try:
        array = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric (rows, features) array, got {type(a).__name__}") from exc
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite 2-D array (rows, features >= 2), got shape {array.shape}")
    return array


def _correlation(test: Any, x: np.ndarray, y: np.ndarray) -> float:
    """``test(x, y).statistic`` (``scipy.stats.pearsonr`` or ``spearmanr``); NaN when either is constant."""
    return float("nan") if np.ptp(x) == 0 or np.ptp(y) == 0 else float(test(x, y).statistic)


def attribution_agreement(reference: Any, other: Any) -> pd.Series:
    """How closely two attributions of the same rows agree, as a Series of named numbers.

    Takes two ``(rows, features)`` arrays (or a DataFrame, :class:`TreeShapResult`, ``shap.Explanation``).
    Entries: ``max_abs_diff``, ``mean_abs_diff``, ``mean_abs_reference`` (the scale), ``pearson_r`` of all
    values, ``rank_corr_importance`` (Spearman, of the per-feature mean |values|) and ``same_top_feature``
    (share of rows whose largest |value| is on the same feature).
    """
    a, b = _attributions(reference, "reference"), _attributions(other, "other")
    if a.shape != b.shape:
        raise ValueError(f"reference and other must have the same shape, got {a.shape} and {b.shape}")
    diff = np.abs(a - b)
    return pd.Series({
        "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "mean_abs_reference": float(np.abs(a).mean()),
        "pearson_r": _correlation(stats.pearsonr, a.ravel(), b.ravel()),
        "rank_corr_importance": _correlation(stats.spearmanr, np.abs(a).mean(axis=0), np.abs(b).mean(axis=0)),
        "same_top_feature": float((np.abs(a).argmax(axis=1) == np.abs(b).argmax(axis=1)).mean()),
    }, name="agreement")


def eli5_weights(model: Any, feature_names: Any = None) -> pd.Series:
    """ELI5's global weights of a model (``eli5.explain_weights``), as a Series feature -> weight, largest first.

    For CatBoost, its ``PredictionValuesChange`` rescaled to sum to 1; for scikit-learn trees, their
    impurity-based ``feature_importances_``. ``feature_names`` default to the model's.
    """
    if not hasattr(model, "predict"):
        raise TypeError(f"model must be a fitted model that ELI5 supports, got {type(model).__name__}")
    if feature_names is None:
        feature_names = getattr(model, "feature_names_", getattr(model, "feature_names_in_", None))
    if feature_names is None:
        raise ValueError("feature_names must be given: the model does not record its feature names")
    names = [str(n) for n in feature_names]
    explanation = eli5.explain_weights(model, feature_names=names, top=None)
    if explanation.error or explanation.feature_importances is None:
        raise TypeError(f"model: ELI5 cannot explain the weights of {type(model).__name__}: {explanation.error}")
    weights = {fw.feature: float(fw.weight) for fw in explanation.feature_importances.importances}
    series = pd.Series({n: weights.get(n, 0.0) for n in names}, name="eli5_weight").rename_axis("feature")
    return series.sort_values(ascending=False, kind="stable")


def decision_path_contributions(model: Any, X: Any) -> pd.DataFrame:
    """Per-row decision-path ("Saabas") contributions of a scikit-learn tree model, by ``eli5.explain_prediction``.

    For each row, ELI5 follows its path through every tree and credits each split's change of the node
    mean to the feature split on (Saabas 2014, the ``treeinterpreter`` method). Contributions plus
    ``<BIAS>`` (the root mean) add up to the prediction, but they are not Shapley values: they depend on
    where in the tree a feature is split, and are inconsistent (Lundberg, Erion & Lee 2018, "Consistent
    individualized feature attribution for tree ensembles", Fig. 1). ``X`` has the model's columns in order.
    """
    if not isinstance(model, _SKLEARN_TREES):
        raise TypeError(f"model must be a scikit-learn tree or tree-ensemble regressor, got {type(model).__name__}")
    if not hasattr(model, "n_features_in_"):
        raise ValueError("model is not fitted; call model.fit first")
    frame = _features(X)
    names = [str(n) for n in getattr(model, "feature_names_in_", frame.columns)]
    if list(frame.columns) != names:
        raise ValueError(f"X must have exactly the model's columns in order {names!r}, got {list(frame.columns)!r}")
    if model.n_features_in_ != len(names):
        raise ValueError(f"X must have the model's {model.n_features_in_} columns, got {len(names)}")
    rows = []
    with warnings.catch_warnings():  # ELI5 passes NumPy rows to a model fitted on a DataFrame: sklearn warns
        warnings.simplefilter("ignore", UserWarning)
        for values in frame.to_numpy():
            target = eli5.explain_prediction(model, values, feature_names=names).targets[0].feature_weights
            weights = {fw.feature: fw.weight for fw in [*target.pos, *target.neg]}
            rows.append([float(weights.get(n, 0.0)) for n in [*names, "<BIAS>"]])
    return pd.DataFrame(rows, index=frame.index, columns=[*names, "<BIAS>"])
