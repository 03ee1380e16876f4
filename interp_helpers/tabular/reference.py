"""Independent checks of TreeSHAP values -- computation only.

* :func:`brute_force_tree_shap` -- an independent reference: the exact Shapley
  values (and Shapley interaction indices) of the same path-dependent value
  function that TreeSHAP computes, by enumerating every feature subset of every
  tree, written in NumPy from the model's JSON dump;
* :func:`check_shap_against_catboost` -- the cross-checks of a
  :class:`~interp_helpers.tabular.treeshap.TreeShapResult`: ``shap`` vs CatBoost's
  native ``get_feature_importance(type="ShapValues")``, additivity (local
  accuracy), interaction values summing to SHAP values, and the brute force,
  reported as a :class:`ShapCheck`.

catboost and pandas are imported inside the functions that need them.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..validation import check_flag, check_number
from .checks import check_catboost_model, check_model_features
from .treeshap import TreeShapResult, check_tree_shap_result, tree_shap

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ShapCheck", "brute_force_tree_shap", "check_shap_against_catboost"]


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
    model = check_catboost_model(model)
    frame = check_model_features(model, X)
    interactions = check_flag(interactions, "interactions")
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
        import pandas as pd

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

    model = check_catboost_model(model)
    frame = check_model_features(model, X)
    tolerance = check_number(tolerance, "tolerance", low=0.0, low_open=True)
    brute_force = check_flag(brute_force, "brute_force")
    if result is None:
        result = tree_shap(model, frame, interactions=True)
    else:
        result = check_tree_shap_result(result, data=frame)
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


