"""Tests for interp_helpers.attribution.shap_bridge: same numbers as raw shap, no side effects, layouts."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers.attribution.noise import add_noise, noise_tunnel
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
    values, classes = shap_gradient_explainer(model, x, background=background, nsamples=20, ranked_outputs=2, seed=7)
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
    values, classes = shap_gradient_explainer(model, x, background=background, layer=model[2], nsamples=4, seed=0)
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
    shap_gradient_explainer(model, x, background=background, nsamples=3, seed=1)
    shap_gradient_explainer(model, x, background=background, layer=model[2], nsamples=3, seed=1)
    assert model_fingerprint(model) == before
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_local_smoothing_changes_the_result_and_zero_does_not() -> None:
    model = _model()
    x, background = _data()
    a, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=2)
    b, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=2, local_smoothing=0.0)
    c, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=2, local_smoothing=0.5)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_local_smoothing_is_seeded_and_leaves_torch_rng_alone() -> None:
    model = _model()
    x, background = _data()
    state = torch.get_rng_state()
    c1, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=2, local_smoothing=0.5)
    c2, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=2, local_smoothing=0.5)
    c3, _ = shap_gradient_explainer(model, x, background=background, nsamples=8, seed=3, local_smoothing=0.5)
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
    before = model_fingerprint(model)
    with pytest.raises(RuntimeError, match="boom"):
        shap_gradient_explainer(model, x, background=background, layer=model[2], nsamples=2)
    assert len(calls) == 2
    assert not hasattr(model[2], "target_input")
    assert model_fingerprint(model) == before  # shap's own hook on model[2] is gone too
    calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        shap_gradient_explainer(model, x, 1, background=background, layer=model[2], nsamples=2)
    assert model_fingerprint(model) == before and not hasattr(model[2], "target_input")
    handle.remove()


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
        ({"target": 5}, ValueError, "target"),
        ({"target": [0, 1, 2]}, ValueError, "target"),
        ({"target": 0.5}, ValueError, "target"),
        ({"target": lambda z: z}, ValueError, "target"),
        ({"target": 1, "nsamples": 0}, ValueError, "nsamples"),
        ({"target": 1, "background": torch.zeros(2, 3, 7, 8)}, ValueError, "background"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    model = _model()
    x, background = _data()
    args = {"inputs": x, "background": background, "nsamples": 2}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        shap_gradient_explainer(model, args.pop("inputs"), **args)


# --------------------------------------------------------------------------- a given target


def test_target_gives_the_numbers_of_the_top_class_form() -> None:
    """An image first in its call, its top class as the target: the same draws and numbers as target=None."""
    model = _model().eval()
    x, background = _data()
    values, classes = shap_gradient_explainer(model, x, background=background, nsamples=12, seed=4)
    for i in range(2):
        alone, alone_classes = shap_gradient_explainer(model, x[i:i + 1], background=background, nsamples=12, seed=4)
        one = shap_gradient_explainer(model, x[i:i + 1], int(classes[i, 0]), background=background, nsamples=12,
                                      seed=4)
        assert one.shape == (1, 3, 8, 8) and one.dtype == x.dtype and one.device == x.device
        assert int(alone_classes[0, 0]) == int(classes[i, 0])
        np.testing.assert_allclose(one.numpy(), alone[:, 0].numpy(), rtol=1e-6, atol=1e-7)
    # per-image targets: image 0 is first in its call either way, so it matches the top-class run exactly
    per_image = shap_gradient_explainer(model, x, classes[:, 0], background=background, nsamples=12, seed=4)
    assert per_image.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(per_image[0].numpy(), values[0, 0].numpy(), rtol=1e-6, atol=1e-7)
    if int(classes[0, 0]) != int(classes[1, 0]):  # image 1 is alone in its call: as explained alone
        np.testing.assert_allclose(per_image[1].numpy(), shap_gradient_explainer(
            model, x[1:], int(classes[1, 0]), background=background, nsamples=12, seed=4)[0].numpy())
    # one class for all: one call over all images, exactly as shap's ranked form when it is every image's top class
    assert classes[:, 0].tolist() == [2, 2]
    np.testing.assert_allclose(shap_gradient_explainer(model, x, 2, background=background, nsamples=12, seed=4).numpy(),
                               values[:, 0].numpy(), rtol=1e-6, atol=1e-7)
    # a second-ranked class explained as a target equals the ranked_outputs=2 form's second column
    values2, classes2 = shap_gradient_explainer(model, x[:1], background=background, nsamples=12,
                                                ranked_outputs=2, seed=4)
    second = shap_gradient_explainer(model, x[:1], int(classes2[0, 1]), background=background, nsamples=12, seed=4)
    np.testing.assert_allclose(second[0].numpy(), values2[0, 1].numpy(), rtol=1e-6, atol=1e-7)


def test_target_with_a_layer_and_a_score_callable() -> None:
    model = _model().eval()
    x, background = _data()
    kwargs = {"background": background, "layer": model[2], "nsamples": 6, "seed": 1}
    a = shap_gradient_explainer(model, x, 0, **kwargs)
    b = shap_gradient_explainer(model, x, 3, **kwargs)
    diff = shap_gradient_explainer(model, x, lambda z: z[:, 0] - z[:, 3], **kwargs)
    assert diff.shape == (2, 4, 8, 8)  # model[2]'s input
    torch.testing.assert_close(diff, a - b, rtol=1e-5, atol=1e-6)  # same draws, linear in the score
    assert not torch.allclose(a, b)
    assert not hasattr(model[2], "target_input")


def test_target_form_is_a_protocol_method() -> None:
    """partial(shap_gradient_explainer, background=bg) composes with noise_tunnel (called once per noisy copy)."""
    model = _model().eval()
    x, background = _data()
    method = functools.partial(shap_gradient_explainer, background=background, nsamples=4, seed=0)
    smoothed = noise_tunnel(method, model, x, 2, n_samples=2, noise_level=0.1, seed=3)
    expected = torch.stack([method(model, add_noise(x, 0.1, seed=3, sample_index=j), 2) for j in range(2)]).mean(0)
    assert smoothed.shape == x.shape
    torch.testing.assert_close(smoothed, expected, rtol=1e-5, atol=1e-6)


def test_target_form_leaves_model_and_rngs_as_found() -> None:
    model = _model()
    model.train()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    model[4].register_forward_hook(lambda *args: None)
    before = model_fingerprint(model)
    x, background = _data()
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    state = torch.get_rng_state()
    shap_gradient_explainer(model, x, [1, 4], background=background, nsamples=3, local_smoothing=0.2)
    shap_gradient_explainer(model, x, lambda z: z[:, 1], background=background, layer=model[2], nsamples=3)
    assert model_fingerprint(model) == before
    np.testing.assert_array_equal(np.random.rand(3), expected)
    assert torch.equal(torch.get_rng_state(), state)


def test_single_output_layouts_of_shap_versions():
    """One-output models: a list of one array (older shap) or a trailing axis of length 1 (newer shap)."""
    from interp_helpers.attribution.shap_bridge import _single_output

    values = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert np.array_equal(_single_output([values]), values)
    assert np.array_equal(_single_output(values[..., None]), values)
    assert np.array_equal(_single_output(values), values)
