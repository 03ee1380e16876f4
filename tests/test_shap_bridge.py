"""Tests for interp_helpers.attribution.shap_bridge: same numbers as raw shap, no side effects, layouts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers.hooks import model_fingerprint
from interp_helpers.attribution.shap_bridge import image_plot_values, shap_gradient_explainer

shap = pytest.importorskip("shap")


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )
    nn.init.normal_(model[6].weight, std=2.0)
    return model


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 8, 8, generator=g), 0.3 * torch.randn(3, 3, 8, 8, generator=g)


def test_same_numbers_as_raw_shap_in_our_layout() -> None:
    model = _model().eval()
    x, background = _data()
    values, classes = shap_gradient_explainer(model, x, background, nsamples=20, ranked_outputs=2, seed=7)
    state = np.random.get_state()  # raw shap reseeds NumPy's global RNG; put it back
    try:
        raw, raw_classes = shap.GradientExplainer(model, background).shap_values(x, nsamples=20, ranked_outputs=2,
                                                                                 rseed=7)
    finally:
        np.random.set_state(state)
    assert values.shape == (2, 2, 3, 8, 8) and values.dtype == torch.float32
    np.testing.assert_allclose(values.numpy(), np.moveaxis(np.asarray(raw), -1, 1).astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(classes.numpy(), np.asarray(raw_classes))
    with torch.no_grad():
        top2 = model(x).argsort(dim=1, descending=True)[:, :2]
    assert torch.equal(classes, top2)


def test_layer_form_attributes_the_layer_input() -> None:
    model = _model()
    x, background = _data()
    values, classes = shap_gradient_explainer(model, x, background, layer=model[2], nsamples=4, seed=0)
    assert values.shape == (2, 1, 4, 8, 8)  # model[2]'s input is model[1]'s output (4 x 8 x 8)
    assert not hasattr(model[2], "target_input")


def test_model_and_global_rng_left_as_found() -> None:
    model = _model()
    model.train()
    model[0].weight.grad = torch.ones_like(model[0].weight)  # shap's zero_grad() would drop this
    model[4].register_forward_hook(lambda *args: None)
    before = model_fingerprint(model)
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    x, background = _data()
    shap_gradient_explainer(model, x, background, nsamples=3, seed=1)
    shap_gradient_explainer(model, x, background, layer=model[2], nsamples=3, seed=1)
    assert model_fingerprint(model) == before
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_local_smoothing_changes_the_result_and_zero_does_not() -> None:
    model = _model()
    x, background = _data()
    a, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=2)
    b, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=2, local_smoothing=0.0)
    c, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=2, local_smoothing=0.5)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_local_smoothing_is_seeded_and_leaves_torch_rng_alone() -> None:
    model = _model()
    x, background = _data()
    state = torch.get_rng_state()
    c1, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=2, local_smoothing=0.5)
    c2, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=2, local_smoothing=0.5)
    c3, _ = shap_gradient_explainer(model, x, background, nsamples=8, seed=3, local_smoothing=0.5)
    torch.testing.assert_close(c1, c2)
    assert not torch.allclose(c1, c3)
    assert torch.equal(torch.get_rng_state(), state)


def test_layer_capture_attribute_is_removed_when_shap_raises() -> None:
    model = _model()
    x, background = _data()
    calls = []

    def fail_on_second_call(module, args):
        calls.append(1)
        if len(calls) >= 2:  # the explainer is built, then the explanation fails
            raise RuntimeError("boom")

    handle = model[4].register_forward_pre_hook(fail_on_second_call)
    with pytest.raises(RuntimeError, match="boom"):
        shap_gradient_explainer(model, x, background, layer=model[2], nsamples=2)
    handle.remove()
    assert len(calls) == 2
    assert not hasattr(model[2], "target_input")


def test_image_plot_values_layout() -> None:
    v = torch.arange(2 * 3 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 3, 4, 5)
    out = image_plot_values(v)
    assert len(out) == 3 and all(o.shape == (2, 4, 5, 3) for o in out)
    assert out[1][0, 2, 3, 1] == v[0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="values"):
        image_plot_values(v[0])
    with pytest.raises(TypeError, match="values"):
        image_plot_values(v.numpy())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"background": torch.zeros(2, 3, 7, 8)}, ValueError, "background"),
        ({"background": torch.zeros(0, 3, 8, 8)}, ValueError, "background"),
        ({"inputs": torch.zeros(3, 8, 8)}, ValueError, "inputs"),
        ({"layer": nn.ReLU()}, ValueError, "layer"),
        ({"layer": "relu"}, TypeError, "layer"),
        ({"nsamples": 0}, ValueError, "nsamples"),
        ({"ranked_outputs": 0}, ValueError, "ranked_outputs"),
        ({"local_smoothing": -1.0}, ValueError, "local_smoothing"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    model = _model()
    x, background = _data()
    args = {"inputs": x, "background": background, "nsamples": 2}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        shap_gradient_explainer(model, args.pop("inputs"), args.pop("background"), **args)
