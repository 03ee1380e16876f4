"""interp_helpers: the tested helper package behind the interpretability notebook series.

Computation and plotting live in separate modules. The functions the notebooks call most are
re-exported here; specialised ones are imported from their module (``interp_helpers.metrics.depth``,
``interp_helpers.attribution.shap_bridge``, ...).
"""
from .data import load_boston
from .images import ExampleImage, example_images, load_image
from .models import (
    MODEL_NAMES,
    LoadedModel,
    Prediction,
    WeightsUnavailableError,
    load_model,
    predict,
)
from .notebook import NotebookSetup, setup_notebook

from .attribution.gradient import gradient, gradient_x_input
from .attribution.noise import add_noise, noise_tunnel, smoothgrad
from .plotting.maps import (
    image_grid,
    normalize_map,
    reduce_channels,
    show_diverging,
    show_heatmap,
    show_image,
    show_overlay,
)
from .attribution.expected_gradients import expected_gradients
from .attribution.backgrounds import blurred_copies, make_background
from .tabular.treeshap import (
    BaselineComparison,
    CatBoostFit,
    ShapCheck,
    TreeShapResult,
    brute_force_tree_shap,
    check_shap_against_catboost,
    compare_baselines,
    importance_table,
    mean_abs_interactions,
    mean_abs_shap,
    regression_metrics,
    strongest_interactions,
    train_catboost,
    tree_shap,
)
from .plotting.tabular import (
    plot_bar,
    plot_beeswarm,
    plot_dependence,
    plot_force,
    plot_importance_comparison,
    plot_interaction_heatmap,
    plot_waterfall,
)
from .metrics.faithfulness import (
    CurveResult,
    RandomizationResult,
    auc_table,
    deletion_curve,
    insertion_curve,
    randomization_table,
    randomization_test,
)
from .plotting.evaluation import plot_curves, plot_randomization

__version__ = "0.1.0"

__all__ = [
    "MODEL_NAMES",
    "ExampleImage",
    "LoadedModel",
    "NotebookSetup",
    "Prediction",
    "WeightsUnavailableError",
    "example_images",
    "load_boston",
    "load_image",
    "load_model",
    "predict",
    "setup_notebook",
    # image attributions (notebooks 01-03, 05)
    "gradient",
    "gradient_x_input",
    "smoothgrad",
    "noise_tunnel",
    "add_noise",
    "expected_gradients",
    "make_background",
    "blurred_copies",
    # image plots
    "image_grid",
    "normalize_map",
    "reduce_channels",
    "show_diverging",
    "show_heatmap",
    "show_image",
    "show_overlay",
    # are the explanations right? (notebook 05)
    "CurveResult",
    "RandomizationResult",
    "auc_table",
    "deletion_curve",
    "insertion_curve",
    "randomization_table",
    "randomization_test",
    "plot_curves",
    "plot_randomization",
    # tabular models (notebook 04)
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
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_force",
    "plot_importance_comparison",
    "plot_interaction_heatmap",
    "plot_waterfall",
]
