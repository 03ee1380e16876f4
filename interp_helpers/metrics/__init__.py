"""Metrics of attribution maps: faithfulness (deletion/insertion), sanity (cascading randomization), depth.

* :mod:`.faithfulness` -- deletion and insertion curves (Petsiuk et al. 2018, RISE) and their AUC table;
* :mod:`.sanity` -- cascading model-parameter randomization (Adebayo et al. 2018);
* :mod:`.depth` -- comparing maps across network depth (layer maps, resolution, agreement, channels).
"""
from .depth import (
    agreement_table,
    channel_importance,
    effective_resolution,
    layer_activations,
    layer_map,
    top_channel_share,
    top_fraction_overlap,
)
from .faithfulness import (
    BASELINES,
    DEFAULT_BLUR_SIGMA,
    CurveResult,
    auc_table,
    deletion_curve,
    insertion_curve,
    make_baseline,
)
from .sanity import RandomizationResult, cascade_stages, randomization_table, randomization_test

__all__ = [
    # faithfulness
    "BASELINES",
    "DEFAULT_BLUR_SIGMA",
    "CurveResult",
    "auc_table",
    "deletion_curve",
    "insertion_curve",
    "make_baseline",
    # sanity
    "RandomizationResult",
    "cascade_stages",
    "randomization_table",
    "randomization_test",
    # depth
    "agreement_table",
    "channel_importance",
    "effective_resolution",
    "layer_activations",
    "layer_map",
    "top_channel_share",
    "top_fraction_overlap",
]
