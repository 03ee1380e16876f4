"""interp_helpers: the small, tested helper package behind the interpretability notebook series.

The names the notebooks call most are exported here; the rest live in their modules (``methods``,
``evaluation``, ``depth``, ``maps``, ``plots``, ``trees``, ``tree_plots``, ``models``, ``images``, ``data``,
``notebook``). The conventions every function follows are stated once, in the README's "The helper package".
"""
from .data import load_boston
from .images import blurred_copies, example_images, load_image, make_background
from .methods import (
    add_noise,
    expected_gradients,
    expected_gradients_check,
    gradient,
    gradient_x_input,
    noise_tunnel,
    smoothgrad,
    smoothgrad_convergence,
)
from .models import load_model, predict
from .notebook import setup_notebook
from .plots import image_grid, scale_bar, show_diverging, show_heatmap, show_image, show_overlay
from .tree_plots import (
    plot_bar,
    plot_beeswarm,
    plot_dependence,
    plot_force,
    plot_importance_comparison,
    plot_interaction_heatmap,
    plot_waterfall,
)
from .trees import (
    check_shap_against_catboost,
    compare_baselines,
    importance_table,
    mean_abs_interactions,
    mean_abs_shap,
    strongest_interactions,
    train_catboost,
    tree_shap,
)

__version__ = "0.4.1"

__all__ = [  # sorted; grouped by module in the imports above
    "add_noise", "blurred_copies", "check_shap_against_catboost", "compare_baselines", "example_images",
    "expected_gradients", "expected_gradients_check", "gradient", "gradient_x_input", "image_grid",
    "importance_table", "load_boston", "load_image", "load_model", "make_background", "mean_abs_interactions",
    "mean_abs_shap", "noise_tunnel", "plot_bar", "plot_beeswarm", "plot_dependence", "plot_force",
    "plot_importance_comparison", "plot_interaction_heatmap", "plot_waterfall", "predict", "scale_bar",
    "setup_notebook", "show_diverging", "show_heatmap", "show_image", "show_overlay", "smoothgrad",
    "smoothgrad_convergence", "strongest_interactions", "train_catboost", "tree_shap",
]
