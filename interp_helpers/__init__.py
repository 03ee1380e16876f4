"""interp_helpers: the tested helper package behind the interpretability notebook series.

Computation and plotting live in separate modules. The functions the notebooks call most are
re-exported here; specialised ones are imported from their module (``interp_helpers.metrics.depth``,
``interp_helpers.attribution.shap_bridge``, ...).

Importing the package is cheap: every name below is loaded from its module on first use
(PEP 562 ``__getattr__``), so ``import interp_helpers`` imports neither torch nor
matplotlib, shap, catboost, pandas or scipy; ``interp_helpers.smoothgrad`` imports what
SmoothGrad needs, ``interp_helpers.plot_bar`` what a bar plot needs.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"

#: Where each exported name lives (module relative to this package). ``reduce_channels`` is the
#: one channel reduction of :mod:`interp_helpers.maps`; ``normalize_map`` is display scaling.
_EXPORTS: dict[str, str] = {
    # data, photos, models, notebook set-up
    "load_boston": "data",
    "ExampleImage": "images",
    "example_images": "images",
    "load_image": "images",
    "MODEL_NAMES": "models",
    "LoadedModel": "models",
    "Prediction": "models",
    "WeightsUnavailableError": "models",
    "load_model": "models",
    "predict": "models",
    "NotebookSetup": "notebook",
    "setup_notebook": "notebook",
    # image attributions (notebooks 01-03, 05)
    "add_noise": "attribution.noise",
    "gradient": "attribution.gradient",
    "gradient_x_input": "attribution.gradient",
    "noise_tunnel": "attribution.noise",
    "smoothgrad": "attribution.noise",
    "expected_gradients": "attribution.expected_gradients",
    "blurred_copies": "attribution.backgrounds",
    "make_background": "attribution.backgrounds",
    # maps and image plots
    "reduce_channels": "maps",
    "image_grid": "plotting.maps",
    "scale_bar": "plotting.maps",
    "normalize_map": "plotting.maps",
    "show_diverging": "plotting.maps",
    "show_heatmap": "plotting.maps",
    "show_image": "plotting.maps",
    "show_overlay": "plotting.maps",
    # are the explanations right? (notebook 05)
    "CurveResult": "metrics.faithfulness",
    "RandomizationResult": "metrics.sanity",
    "auc_table": "metrics.faithfulness",
    "deletion_curve": "metrics.faithfulness",
    "insertion_curve": "metrics.faithfulness",
    "randomization_table": "metrics.sanity",
    "randomization_test": "metrics.sanity",
    "plot_curves": "plotting.evaluation",
    "plot_randomization": "plotting.evaluation",
    # tabular models (notebook 04)
    "BaselineComparison": "tabular.model",
    "CatBoostFit": "tabular.model",
    "compare_baselines": "tabular.model",
    "regression_metrics": "tabular.model",
    "train_catboost": "tabular.model",
    "TreeShapResult": "tabular.treeshap",
    "mean_abs_interactions": "tabular.treeshap",
    "mean_abs_shap": "tabular.treeshap",
    "strongest_interactions": "tabular.treeshap",
    "tree_shap": "tabular.treeshap",
    "ShapCheck": "tabular.reference",
    "brute_force_tree_shap": "tabular.reference",
    "check_shap_against_catboost": "tabular.reference",
    "importance_table": "tabular.importance",
    "plot_bar": "plotting.tabular",
    "plot_beeswarm": "plotting.tabular",
    "plot_dependence": "plotting.tabular",
    "plot_force": "plotting.tabular",
    "plot_importance_comparison": "plotting.tabular",
    "plot_interaction_heatmap": "plotting.tabular",
    "plot_waterfall": "plotting.tabular",
}

#: Subpackages and modules reachable as attributes (``interp_helpers.tabular``) without importing them first.
_SUBMODULES = frozenset({
    "attribution", "cli", "data", "hooks", "images", "maps", "memory", "metrics", "models", "notebook",
    "plotting", "tabular", "validation",
})

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module behind an exported name on first access (PEP 562) and cache the value."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
