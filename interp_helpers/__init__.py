"""interp_helpers: the tested helper package behind the interpretability notebook series.

Computation and plotting live in separate modules; everything public is re-exported here.
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

# [saliency]
# [plotting]
# [expgrad]
# [tabular]
# [evaluation]

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
]
