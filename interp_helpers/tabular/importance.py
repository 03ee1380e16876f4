"""Global feature importance, and other attributions to compare TreeSHAP with -- computation only.

* :func:`importance_table` -- global importance three ways: mean |SHAP|,
  CatBoost's ``PredictionValuesChange`` and scikit-learn's permutation
  importance (Breiman 2001, "Random Forests"), with ranks side by side;
* :func:`attribution_agreement` -- how two attributions of the same rows agree;
* :func:`eli5_weights` and :func:`decision_path_contributions` -- wrappers of ELI5
  (``eli5.explain_weights``; ``eli5.explain_prediction``'s Saabas decision-path
  contributions for scikit-learn trees), independent references for notebook 04.

eli5, scikit-learn and pandas are imported inside the functions that need them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..validation import check_positive_int, check_seed
from .checks import check_catboost_model, check_features, check_model_features, check_target
from .treeshap import TreeShapResult, check_tree_shap_result, tree_shap

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["attribution_agreement", "decision_path_contributions", "eli5_weights", "importance_table"]


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
    import pandas as pd
    from sklearn.inspection import permutation_importance

    model = check_catboost_model(model)
    frame = check_model_features(model, X)
    target = check_target(y, len(frame), "y")
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    seed = check_seed(seed, "seed")
    if result is None:
        result = tree_shap(model, frame, interactions=False)
    else:
        result = check_tree_shap_result(result, data=frame)
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
    import pandas as pd

    from ..maps import spearman

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
            "rank_corr_importance": spearman(np.abs(a).mean(axis=0), np.abs(b).mean(axis=0)),
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
    import pandas as pd

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
    import pandas as pd

    model = _check_sklearn_tree_regressor(model)
    frame = check_features(X, "X")
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
