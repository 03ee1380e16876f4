"""Plotting only -- nothing here computes an attribution, a metric or a SHAP value.

* :mod:`~interp_helpers.plotting.maps` -- image attributions: :func:`show_image`,
  :func:`show_heatmap`, :func:`show_overlay`, :func:`show_diverging`, :func:`image_grid`,
  the display scaling :func:`normalize_map` and one shared colourbar for a group of
  panels, :func:`scale_bar`;
* :mod:`~interp_helpers.plotting.evaluation` -- deletion/insertion curves and the
  randomization test (:func:`plot_curves`, :func:`plot_randomization`, :func:`plot_cascade_maps`);
* :mod:`~interp_helpers.plotting.tabular` -- TreeSHAP results (``plot_beeswarm``, ``plot_bar``, ...).

matplotlib (and shap, pandas) are imported by the functions that draw:
``import interp_helpers.plotting`` loads neither matplotlib nor pyplot.
"""
from .evaluation import plot_cascade_maps, plot_curves, plot_randomization
from .maps import (
    DIVERGING_CMAP,
    HEAT_CMAP,
    image_grid,
    normalize_map,
    scale_bar,
    show_diverging,
    show_heatmap,
    show_image,
    show_overlay,
)
from .tabular import (
    plot_bar,
    plot_beeswarm,
    plot_dependence,
    plot_force,
    plot_importance_comparison,
    plot_interaction_heatmap,
    plot_waterfall,
)

__all__ = [
    "DIVERGING_CMAP",
    "HEAT_CMAP",
    "image_grid",
    "normalize_map",
    "scale_bar",
    "show_diverging",
    "show_heatmap",
    "show_image",
    "show_overlay",
    "plot_cascade_maps",
    "plot_curves",
    "plot_randomization",
    "plot_bar",
    "plot_beeswarm",
    "plot_dependence",
    "plot_force",
    "plot_importance_comparison",
    "plot_interaction_heatmap",
    "plot_waterfall",
]
