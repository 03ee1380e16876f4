"""Gradient-boosted trees on tabular data, explained with TreeSHAP -- computation only.

The modules follow the analysis of notebook 04:

* :mod:`~interp_helpers.tabular.model` -- fit and score: :func:`train_catboost`
  (:class:`CatBoostFit`), :func:`regression_metrics`, :func:`compare_baselines`
  (:class:`BaselineComparison`: CatBoost vs least squares vs one CART tree);
* :mod:`~interp_helpers.tabular.treeshap` -- explain: :func:`tree_shap`
  (:class:`TreeShapResult`, SHAP and interaction values via ``shap.TreeExplainer``)
  and its summaries :func:`mean_abs_shap`, :func:`mean_abs_interactions`,
  :func:`strongest_interactions`;
* :mod:`~interp_helpers.tabular.reference` -- check the explanation:
  :func:`brute_force_tree_shap` (exact Shapley values by subset enumeration) and
  :func:`check_shap_against_catboost` (:class:`ShapCheck`);
* :mod:`~interp_helpers.tabular.importance` -- compare: :func:`importance_table`
  (mean |SHAP|, PredictionValuesChange, permutation importance),
  :func:`attribution_agreement`, and the ELI5 wrappers :func:`eli5_weights` and
  :func:`decision_path_contributions`;
* :mod:`~interp_helpers.tabular.checks` -- the argument checks they share.

Feature matrices are pandas DataFrames with unique string column names and
finite numeric values; targets are finite and one per row. Every public
function checks this at the boundary and raises ``TypeError``/``ValueError``
naming the argument. Randomness comes only from the ``seed`` parameters.
catboost, shap, eli5, scikit-learn and pandas are imported by the functions
that use them, so importing this package is cheap. Plots of these results live
in :mod:`interp_helpers.plotting.tabular`.
"""
from .checks import check_catboost_model, check_features, check_model_features, check_target
from .importance import attribution_agreement, decision_path_contributions, eli5_weights, importance_table
from .model import (
    DEFAULT_CATBOOST_PARAMS,
    BaselineComparison,
    CatBoostFit,
    compare_baselines,
    regression_metrics,
    train_catboost,
)
from .reference import ShapCheck, brute_force_tree_shap, check_shap_against_catboost
from .treeshap import (
    TreeShapResult,
    check_tree_shap_result,
    mean_abs_interactions,
    mean_abs_shap,
    strongest_interactions,
    tree_shap,
)

__all__ = [
    # model
    "DEFAULT_CATBOOST_PARAMS",
    "BaselineComparison",
    "CatBoostFit",
    "compare_baselines",
    "regression_metrics",
    "train_catboost",
    # treeshap
    "TreeShapResult",
    "check_tree_shap_result",
    "mean_abs_interactions",
    "mean_abs_shap",
    "strongest_interactions",
    "tree_shap",
    # reference
    "ShapCheck",
    "brute_force_tree_shap",
    "check_shap_against_catboost",
    # importance
    "attribution_agreement",
    "decision_path_contributions",
    "eli5_weights",
    "importance_table",
    # checks
    "check_catboost_model",
    "check_features",
    "check_model_features",
    "check_target",
]
