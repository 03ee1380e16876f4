"""TreeSHAP values of a CatBoost regressor and their summaries -- computation only.

* :func:`tree_shap` -- SHAP values (Lundberg & Lee 2017, "A Unified Approach to
  Interpreting Model Predictions") and SHAP interaction values computed by
  ``shap.TreeExplainer`` with the path-dependent TreeSHAP algorithm (Lundberg et
  al. 2020, "From local explanations to global understanding with explainable
  AI for trees", Nature Machine Intelligence 2:56-67), as a :class:`TreeShapResult`;
* :func:`mean_abs_shap`, :func:`mean_abs_interactions`, :func:`strongest_interactions`
  -- global summaries of a result;
* :func:`check_tree_shap_result` -- the argument check every consumer of a
  result (the cross-checks, the importance table, the plots) uses.

The independent checks of these values live in :mod:`interp_helpers.tabular.reference`;
plots in :mod:`interp_helpers.plotting.tabular`. shap and pandas are imported inside
the functions that need them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..validation import check_flag
from .checks import check_catboost_model, check_model_features

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TreeShapResult",
    "check_tree_shap_result",
    "mean_abs_interactions",
    "mean_abs_shap",
    "strongest_interactions",
    "tree_shap",
]


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


def check_tree_shap_result(
    result: Any, name: str = "result", *, interactions: bool = False, data: pd.DataFrame | None = None
) -> TreeShapResult:
    """Return ``result`` if it is a :class:`TreeShapResult`, else ``TypeError`` naming ``name``.

    ``interactions=True`` also requires interaction values (``ValueError``); ``data``
    (a checked feature frame) requires the result to have been computed on exactly
    those rows and columns (``ValueError``).
    """
    if not isinstance(result, TreeShapResult):
        raise TypeError(f"{name} must be the TreeShapResult returned by tree_shap, got {type(result).__name__}")
    if interactions and result.interaction_values is None:
        raise ValueError(f"{name} has no interaction values; call tree_shap(..., interactions=True)")
    if data is not None and (
        result.values.shape != data.shape or not np.array_equal(result.data.to_numpy(), data.to_numpy())
    ):
        raise ValueError(
            f"{name} was computed on other rows than X "
            f"({name} data shape {result.data.shape}, X shape {data.shape})"
        )
    return result


def tree_shap(model: Any, X: Any, *, interactions: bool = True, dataset: str = "") -> TreeShapResult:
    """SHAP values (and interaction values) of a CatBoost regressor with ``shap.TreeExplainer``.

    Uses the path-dependent TreeSHAP of Lundberg et al. (2020): the value of a
    feature subset S is the prediction averaged over the training data that
    reaches each leaf when the features outside S are unknown, so no background
    data set is needed. For CatBoost models ``shap`` (0.44+) computes this by
    calling CatBoost's own C++ implementation;
    :func:`~interp_helpers.tabular.reference.brute_force_tree_shap` is an independent check.

    ``X`` must have exactly the model's feature columns (any order; they are
    reordered to the model's). Interaction values cost about ``d`` times more
    than SHAP values; ``interactions=False`` skips them. ``shap`` gives CatBoost
    no thread count, so this step uses all cores. Run
    :func:`~interp_helpers.tabular.reference.check_shap_against_catboost` on models
    not trained with :func:`~interp_helpers.tabular.model.train_catboost`: for
    non-symmetric trees the values may not add up.
    """
    import shap

    model = check_catboost_model(model)
    frame = check_model_features(model, X)
    interactions = check_flag(interactions, "interactions")
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
    import pandas as pd

    result = check_tree_shap_result(result)
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
    import pandas as pd

    result = check_tree_shap_result(result, interactions=True)
    names = list(result.feature_names)
    return pd.DataFrame(np.abs(result.interaction_values).mean(axis=0), index=names, columns=names)


def strongest_interactions(result: TreeShapResult) -> pd.Series:
    """For each feature, the other feature with the largest mean |SHAP interaction value|.

    This is the exact counterpart of the heuristic ``shap.utils.approximate_interactions``
    that ``shap.plots.scatter`` uses to pick a colouring feature.
    """
    import pandas as pd

    matrix = mean_abs_interactions(result)
    off = matrix.to_numpy(copy=True)
    if off.shape[0] < 2:
        raise ValueError("result must have at least two features to have interactions")
    np.fill_diagonal(off, -np.inf)
    partners = [matrix.columns[j] for j in off.argmax(axis=1)]
    return pd.Series(partners, index=matrix.index, name="strongest_partner")
