import os
import pickle
import time

import numpy as np
import pytest
import torch
from PIL import Image

import interp_helpers as ih
from interp_helpers import models as M
from interp_helpers.hooks import model_fingerprint


@pytest.fixture(scope="module")
def lite0():
    return ih.load_model("efficientnet_lite0", device="cpu")


def _stage_shapes(loaded, size=224):
    shapes = {}
    handles = [
        stage.register_forward_hook(lambda mod, inp, out, key=key: shapes.__setitem__(key, tuple(out.shape)))
        for key, stage in loaded.stages.items()
    ]
    try:
        with torch.no_grad():
            logits = loaded.module(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return shapes, logits


@pytest.mark.parametrize("name,first,last,early,late", [
    ("resnet50", "layer1", "layer4", "layer2", "layer4"),
    ("densenet121", "features.denseblock1", "features.denseblock4", "features.denseblock2", "features.denseblock4"),
    ("efficientnet_lite0", "blocks.0", "blocks.6", "blocks.2", "blocks.6"),
])
def test_architectures_stages_and_their_strides(name, first, last, early, late):
    """The declared stage table agrees with a forward pass: each stage's output grid is 224 / stride."""
    loaded = ih.load_model(name, weights=None, device="cpu")
    assert loaded.name == name and not loaded.module.training
    assert list(loaded.stages)[0] == first and list(loaded.stages)[-1] == last
    assert list(loaded.stage_strides) == list(loaded.stages)
    for key, stage in loaded.stages.items():
        assert loaded.module.get_submodule(key) is stage
    shapes, logits = _stage_shapes(loaded)
    assert logits.shape == (1, 1000) and len(loaded.categories) == 1000
    for key, shape in shapes.items():
        assert shape[-2:] == (224 // loaded.stage_strides[key],) * 2, (key, shape)
    strides = list(loaded.stage_strides.values())
    assert strides == sorted(strides) and strides[0] < strides[-1]
    assert loaded.stage_at_stride(8) == early and loaded.stage_at_stride(32) == late
    # the deepest stage at that stride: no later stage has the same stride
    later = list(loaded.stages)[list(loaded.stages).index(early) + 1:]
    assert all(loaded.stage_strides[k] > 8 for k in later)
    assert loaded.weights.startswith("random")
    before = model_fingerprint(loaded)
    assert loaded.stage_shapes([early, late]) == {k: shapes[k][1:] for k in (early, late)}
    text = loaded.describe_stages([early, late])
    assert early in text and "stride  8" in text and "stride 32" in text
    assert model_fingerprint(loaded) == before


def test_stage_choice_rejects_bad_input():
    loaded = ih.load_model("resnet50", weights=None, device="cpu")
    with pytest.raises(ValueError, match=r"stride 2\b.*available strides: \[4, 8, 16, 32\]"):
        loaded.stage_at_stride(2)
    with pytest.raises(TypeError, match="stride"):
        loaded.stage_at_stride(8.0)
    with pytest.raises(ValueError, match="names"):
        loaded.describe_stages(["layer9"])
    with pytest.raises(ValueError, match="names"):
        loaded.stage_shapes([])


def test_lite0_key_mapping_matches_timm_in_order_and_shape():
    """The explicit name translation agrees with the order-by-order pairing, shape for shape."""
    import timm

    raw = torch.load(M.lite0_checkpoint_path(), map_location="cpu", weights_only=True)
    assert len(raw) == 296
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    converted = M.convert_lite0_state_dict(raw)
    assert list(converted) == list(target)  # same names, same order
    for (key, tensor), (tkey, ttensor) in zip(converted.items(), target.items()):
        assert tensor.shape == ttensor.shape, key
    assert M._lite0_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert M._lite0_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert M._lite0_key("_blocks.3._expand_conv.weight") == "blocks.2.0.conv_pw.weight"
    with pytest.raises(KeyError):
        M._lite0_key("_something.weight")


def test_lite0_preprocessing_is_tf_lite(lite0):
    """(x * 255 - 127) / 128 per channel, bilinear resize of the short side to 256, centre crop 224."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    x = lite0.transform(image)
    assert x.shape == (3, 224, 224)
    crop = F.center_crop(F.resize(image, 256, interpolation=InterpolationMode.BILINEAR), 224)
    manual = (np.asarray(crop, np.float32).transpose(2, 0, 1) - 127.0) / 128.0
    np.testing.assert_allclose(x.numpy(), manual, atol=1e-5)
    flat = Image.new("RGB", (400, 300), (127, 255, 0))
    x = lite0.transform(flat)
    np.testing.assert_allclose(x[:, 100, 100].numpy(), [0.0, 1.0, -127 / 128], atol=1e-6)
    assert lite0.display(flat).shape == (224, 224, 3)


@pytest.mark.parametrize("photo,expected", [
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}),
    ("coffee", {"espresso", "cup", "coffee mug"}),
    ("rocket", {"missile", "projectile"}),
])
def test_shipped_lite0_weights_classify_example_photos(lite0, photo, expected):
    top = ih.predict(lite0, photo, top_k=3)
    assert top[0].label in expected, top
    assert sum(p.probability for p in top if p.label in expected) > 0.5
    assert top == sorted(top, key=lambda p: -p.probability)


def test_predict_accepts_tensors_and_leaves_model_as_found(lite0):
    lite0.module.train()
    before = model_fingerprint(lite0)
    x = lite0.preprocess("coffee")
    assert ih.predict(lite0, x[0], top_k=1)[0].label == "espresso"
    assert model_fingerprint(lite0) == before
    lite0.module.eval()
    with pytest.raises(ValueError, match="top_k"):
        ih.predict(lite0, x, top_k=0)
    with pytest.raises(ValueError, match="image tensor"):
        ih.predict(lite0, torch.zeros(2, 3, 224, 224))
    with pytest.raises(TypeError, match="model"):
        ih.predict(lite0.module, x)


def test_torchvision_weights_offline_error_is_fast_and_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(M, "_reachable", lambda url, timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(ih.WeightsUnavailableError) as err:
        ih.load_model("resnet50")
    assert time.perf_counter() - start < 10
    message = str(err.value)
    expected = tmp_path / "hub" / "checkpoints"
    assert "resnet50" in message and str(expected) in message and "efficientnet_lite0" in message
    assert str(M.torchvision_checkpoint_path("resnet50")) in message


def test_torchvision_weights_are_taken_from_the_cache(tmp_path, monkeypatch):
    """A checkpoint placed where the error message says is loaded, with torchvision's preprocessing."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(M, "_reachable", lambda url, timeout=3.0: False)
    reference = ih.load_model("densenet121", weights=None, device="cpu")
    path = M.torchvision_checkpoint_path("densenet121")
    path.parent.mkdir(parents=True)
    torch.save(reference.module.state_dict(), path)
    loaded = ih.load_model("densenet121", device="cpu")
    assert str(path) in loaded.weights
    for a, b in zip(loaded.module.state_dict().values(), reference.module.state_dict().values()):
        assert torch.equal(a, b)
    x = loaded.transform(Image.new("RGB", (300, 260), (124, 116, 104)))  # the ImageNet mean colour
    assert x.shape == (3, 224, 224) and x.abs().max() < 0.02


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/interp_helpers_pwned",))


def test_checkpoints_that_need_pickle_are_refused(tmp_path):
    marker = "/tmp/interp_helpers_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        pickle.dump({"conv_stem.weight": _Evil()}, f)
    with pytest.raises(ValueError, match="pickle"):
        ih.load_model("efficientnet_lite0", weights=evil, device="cpu")
    assert not os.path.exists(marker)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ih.load_model("efficientnet_lite0", weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        ih.load_model("efficientnet_lite0", weights=junk)


def test_local_checkpoint_round_trip_and_mismatch(tmp_path):
    model = ih.load_model("efficientnet_lite0", weights=None, device="cpu")
    path = tmp_path / "lite.pth"
    torch.save(model.module.state_dict(), path)
    again = ih.load_model("efficientnet_lite0", weights=path, device="cpu")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model.module(x), again.module(x))
    with pytest.raises(ValueError, match="does not fit"):
        ih.load_model("resnet50", weights=path, device="cpu")


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        ih.load_model("vgg16")
    with pytest.raises(ValueError, match="weights"):
        ih.load_model("efficientnet_lite0", weights=3)
    with pytest.raises(ValueError, match="device"):
        ih.load_model("efficientnet_lite0", weights=None, device="toaster")
    with pytest.raises(ValueError, match="name"):
        M.torchvision_checkpoint_path("efficientnet_lite0")
