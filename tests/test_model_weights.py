"""The checkpoints torchvision publishes, proven with faithful stand-ins (nobody here can download the real files).

Each stand-in has random weights but the published file's name, place and format: the DenseNet121
file keeps torchvision's pre-0.3 key names (``denselayer1.norm.1.weight``), has no
``num_batches_tracked`` entries (it predates them) and uses the legacy (non-zip) serialisation; the
ResNet50 files are plain state dicts. Each is saved in a temporary ``TORCH_HOME`` and must give the
same logits through :func:`load_model` as through torchvision's own builder reading the same file.
No test downloads anything (``tests/conftest.py`` refuses connections); torchvision checks a file's
hash only when it downloads it (``torch.hub.load_state_dict_from_url``), so the stand-ins load.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interp_helpers as ih
from interp_helpers import models as M
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tools/
from tools.check_models import legacy_densenet_state, random_state, write_standin

# the names torchvision publishes (torchvision.models.*_Weights.*.url)
PUBLISHED = {
    ("densenet121", "IMAGENET1K_V1"): "densenet121-a639ec97.pth",
    ("resnet50", "IMAGENET1K_V1"): "resnet50-0676ba61.pth",
    ("resnet50", "IMAGENET1K_V2"): "resnet50-11ad3fa6.pth",
}
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A temporary torchvision cache; nothing is reachable, so a missing file is never downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INTERP_MODEL", raising=False)
    monkeypatch.delenv("INTERP_WEIGHTS", raising=False)
    monkeypatch.setattr(M, "_reachable", lambda url, timeout=3.0: False)
    return tmp_path / "torch"


def place(name: str, weights: str, seed: int = 0) -> tuple[object, dict]:
    """Save a random-weight stand-in at the published file's cache path; return the path and the modern state."""
    path = write_standin(name, weights, seed)
    assert path.name == PUBLISHED[(name, weights)]
    return path, random_state(name, seed)


def _builder(name: str, weights: str) -> nn.Module:
    from torchvision import models

    enum = M._weights_enum(name)
    return getattr(models, name)(weights=enum[weights]).eval()


def _logits(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def test_checkpoint_paths_are_the_published_names(torch_home):
    for (name, weights), filename in PUBLISHED.items():
        path = M.torchvision_checkpoint_path(name, weights)
        assert path == torch_home / "hub" / "checkpoints" / filename
        assert M.torchvision_weights(name, weights).url.endswith("/" + filename)
    # "pretrained" is what the original tutorials' pretrained=True loaded; torchvision's DEFAULT has moved on
    assert M.torchvision_checkpoint_path("resnet50").name == PUBLISHED[("resnet50", "IMAGENET1K_V1")]
    assert M.torchvision_weights("resnet50", "DEFAULT").name == "IMAGENET1K_V2"
    assert M.torchvision_weights("densenet121").name == "IMAGENET1K_V1"


def test_legacy_densenet121_checkpoint_loads_like_torchvisions_builder(torch_home):
    path, state = place("densenet121", "IMAGENET1K_V1", seed=1)
    raw = torch.load(path, weights_only=True)
    assert "features.denseblock1.denselayer1.norm.1.weight" in raw
    assert "features.denseblock4.denselayer16.conv.2.weight" in raw
    assert not any("norm1" in k or "num_batches_tracked" in k for k in raw)
    loaded = ih.load_model("densenet121", device="cpu")
    assert "DenseNet121_Weights.IMAGENET1K_V1" in loaded.weights and str(path) in loaded.weights
    assert "pretrained=True" in loaded.weights and "resize 256" in loaded.weights
    reference = _builder("densenet121", "IMAGENET1K_V1")
    ours = loaded.module.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(ours[key], value), key
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    a, b = _logits(loaded.module, x), _logits(reference, x)
    assert torch.equal(a, b)
    # the stand-in's weights are really in there (not a fresh random init that happens to be used twice)
    assert torch.equal(ours["features.denseblock1.denselayer1.norm1.running_var"],
                       state["features.denseblock1.denselayer1.norm1.running_var"])


@pytest.mark.parametrize("weights,resize", [("IMAGENET1K_V1", 256), ("IMAGENET1K_V2", 232)])
def test_resnet50_checkpoints_load_like_torchvisions_builder(torch_home, weights, resize):
    path, _ = place("resnet50", weights, seed=2)
    loaded = ih.load_model("resnet50", weights=weights, device="cpu")
    assert f"ResNet50_Weights.{weights}" in loaded.weights and str(path) in loaded.weights
    assert f"resize {resize}" in loaded.weights
    reference = _builder("resnet50", weights)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_logits(loaded.module, x), _logits(reference, x))
    # each weights entry's own preprocessing, exactly torchvision's
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 410, 3), dtype=np.uint8))
    preset = M.torchvision_weights("resnet50", weights).transforms()
    assert preset.resize_size == [resize]
    assert torch.equal(loaded.transform(image), preset(image))
    assert loaded.display(image).shape == (224, 224, 3)
    assert loaded.categories == list(M.torchvision_weights("resnet50", weights).meta["categories"])


def test_default_weights_are_the_original_tutorials(torch_home):
    """load_model("resnet50") reads the V1 file; with only the V2 file present it does not silently use it."""
    place("resnet50", "IMAGENET1K_V2")
    with pytest.raises(ih.WeightsUnavailableError, match="resnet50-0676ba61.pth"):
        ih.load_model("resnet50", device="cpu")
    place("resnet50", "IMAGENET1K_V1")
    assert "IMAGENET1K_V1" in ih.load_model("resnet50", device="cpu").weights
    assert "IMAGENET1K_V2" in ih.load_model("resnet50", weights="DEFAULT", device="cpu").weights
    enum = M._weights_enum("resnet50")
    assert "IMAGENET1K_V2" in ih.load_model("resnet50", weights=enum.IMAGENET1K_V2, device="cpu").weights


def test_a_missing_file_is_downloaded_with_torchvisions_hash_check(torch_home, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(random_state("resnet50", 3), dst)

    monkeypatch.setattr(M, "_reachable", lambda url, timeout=3.0: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    loaded = ih.load_model("resnet50", device="cpu")
    assert calls == [(M.torchvision_weights("resnet50").url, "0676ba61")]
    assert M.torchvision_checkpoint_path("resnet50").is_file() and "IMAGENET1K_V1" in loaded.weights

    def failing(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError('invalid hash value (expected "11ad3fa6", got "deadbeef")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", failing)
    with pytest.raises(ih.WeightsUnavailableError, match="resnet50-11ad3fa6.pth.*invalid hash"):
        ih.load_model("resnet50", weights="IMAGENET1K_V2", device="cpu")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/interp_helpers_weights_pwned",))


class _Ones:
    """Unpickles to a tensor through a call that torch.load(weights_only=True) refuses."""

    def __reduce__(self):
        return (torch.ones, (3,))


def test_only_the_published_file_may_need_pickle(tmp_path):
    """A file that needs pickle loads only if its SHA-256 starts with the digits in its name."""
    buffer = io.BytesIO()
    torch.save({"w": _Ones()}, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    good = tmp_path / f"densenet121-{digest[:8]}.pth"
    good.write_bytes(payload)
    assert torch.equal(M._load_torchvision_checkpoint(good, "densenet121")["w"], torch.ones(3))
    bad = tmp_path / "densenet121-a639ec97.pth"
    bad.write_bytes(payload)
    with pytest.raises(ValueError, match="densenet121.*a639ec97.pth.*pickle"):
        M._load_torchvision_checkpoint(bad, "densenet121")
    marker = "/tmp/interp_helpers_weights_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    bad.write_bytes(pickle.dumps({"w": _Evil()}))
    with pytest.raises(ValueError, match="pickle"):
        M._load_torchvision_checkpoint(bad, "densenet121")
    assert not os.path.exists(marker)


def _write_failure(kind: str, path) -> str:
    """Put a broken checkpoint of ``kind`` at ``path``; return a fragment the fallback line must contain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return "not cached and cannot be downloaded"
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path.name
    if kind == "truncated":
        torch.save(legacy_densenet_state(random_state("densenet121", 0)), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path.name
    if kind == "wrong format":
        path.write_text('{"weights": "this is JSON, not a checkpoint"}')
        return path.name
    if kind == "wrong keys":
        torch.save(random_state("resnet50", 0), path)
        return "does not fit"
    if kind == "not tensors":
        torch.save({"epoch": 3}, path)
        return "state dict of tensors"
    if kind == "pickle refused":
        path.write_bytes(pickle.dumps({"features.conv0.weight": _Evil()}))
        return "pickle"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated", "wrong format", "wrong keys",
                                  "not tensors", "pickle refused"])
def test_opening_cell_falls_back_on_any_failure_and_says_why_in_one_line(torch_home, capsys, kind):
    marker = "/tmp/interp_helpers_weights_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = M.torchvision_checkpoint_path("densenet121")
    fragment = _write_failure(kind, path)
    with pytest.raises((ih.WeightsUnavailableError, ValueError, FileNotFoundError)) as err:
        ih.load_model("densenet121", device="cpu")
    assert "densenet121" in str(err.value) and path.name in str(err.value)  # names the model and the file
    setup = ih.setup_notebook("densenet121")
    assert setup.model.name == "efficientnet_lite0"
    lines = [line for line in capsys.readouterr().out.splitlines() if "FALLBACK" in line]
    assert len(lines) == 1, lines
    assert "densenet121" in lines[0] and fragment in lines[0]
    assert not os.path.exists(marker)


def test_a_model_asked_for_by_name_is_loaded_or_fails_loudly(torch_home, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_MODEL", "densenet121")
    with pytest.raises(ih.WeightsUnavailableError, match="densenet121-a639ec97.pth"):
        ih.setup_notebook("resnet50")
    place("resnet50", "IMAGENET1K_V2")
    monkeypatch.setenv("INTERP_MODEL", "resnet50")
    monkeypatch.setenv("INTERP_WEIGHTS", "IMAGENET1K_V2")
    setup = ih.setup_notebook("densenet121")
    out = capsys.readouterr().out
    assert setup.model.name == "resnet50" and "ResNet50_Weights.IMAGENET1K_V2" in out and "resize 232" in out
    monkeypatch.setenv("INTERP_WEIGHTS", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="IMAGENET1K_V9"):
        ih.setup_notebook("densenet121")


def test_the_original_model_runs_when_its_file_is_there(torch_home, capsys):
    place("densenet121", "IMAGENET1K_V1")
    setup = ih.setup_notebook("densenet121")
    out = capsys.readouterr().out
    assert setup.model.name == "densenet121" and "FALLBACK" not in out
    assert "DenseNet121_Weights.IMAGENET1K_V1" in out and "pretrained=True" in out


def test_weights_arguments_are_checked(torch_home):
    with pytest.raises(ValueError, match="ambiguous"):
        ih.load_model("resnet50", weights="default")
    with pytest.raises(ValueError, match=r"IMAGENET1K_V3.*IMAGENET1K_V1"):
        ih.load_model("resnet50", weights="IMAGENET1K_V3")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        ih.load_model("efficientnet_lite0", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="weights"):
        ih.load_model("densenet121", weights=M._weights_enum("resnet50").IMAGENET1K_V1)
    with pytest.raises(ValueError, match="weights"):
        M.torchvision_weights("densenet121", "IMAGENET1K_V2")
    with pytest.raises(ValueError, match="name"):
        M.torchvision_weights("efficientnet_lite0")


@pytest.mark.parametrize("name", ["resnet50", "densenet121"])
def test_random_weights_use_the_original_weights_preprocessing(name):
    loaded = ih.load_model(name, weights=None, device="cpu")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (260, 333, 3), dtype=np.uint8))
    preset = M.torchvision_weights(name, "IMAGENET1K_V1").transforms()
    assert torch.equal(loaded.transform(image), preset(image))
    assert loaded.weights.startswith("random")


def test_garbage_never_escapes_as_a_raw_error(torch_home):
    """Whatever garbage sits at the cache path, loading names the model and the file (a ValueError).
    Random bytes once made the weights-only unpickler raise a bare KeyError: a memo lookup
    (pickle's BINGET / LONG_BINGET) of a key that was never stored."""
    path = M.torchvision_checkpoint_path("densenet121")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12345)
    crafted = [b"\x80\x02h\x05.", b"\x80\x02j\x05\x00\x00\x00.", b"h\x01."]
    for data in crafted + [rng.bytes(size) for size in [1, 7, 64, 4096] * 10]:
        path.write_bytes(data)
        with pytest.raises(ValueError, match=path.name):
            M._safe_load(path, "densenet121")
