"""Tests for interp_helpers.attribution.expected_gradients: known answers, completeness, seeding, shap cross-check, bad input."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers.attribution.noise import add_noise, noise_tunnel
from interp_helpers.hooks import model_fingerprint
from interp_helpers.attribution.expected_gradients import (
    ExpectedGradientsCheck,
    _draws,
    expected_gradients,
    expected_output_gap,
)


# --------------------------------------------------------------------------- models


class SmallCNN(nn.Module):
    """A 2-conv ReLU network on (3, 12, 12) images with named stages."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU(inplace=True)  # in place right after an attributed layer
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


class Residual(nn.Module):
    """conv2 is bypassed by a skip connection: it does not separate the network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h)) + h
        return self.fc(h.mean(dim=(2, 3)))


class Shared(nn.Module):
    """One ReLU module called twice per forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.relu(self.conv(x)) - 0.1)
        return self.fc(h.mean(dim=(2, 3)))


class BatchCounter(nn.Module):
    """Identity that records the batch size of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return x


def _cnn(dtype: torch.dtype = torch.float32, seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN()
    for conv in (model.conv1, model.conv2):  # He init keeps activations O(1), so logit gaps are O(1)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.normal_(model.fc.weight, std=1.0)
    return model.to(dtype).eval()


def _data(dtype: torch.dtype = torch.float32, n: int = 2, m: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = 2.0 * torch.randn(n, 3, 12, 12, generator=g, dtype=dtype)
    background = 0.3 * torch.randn(m, 3, 12, 12, generator=g, dtype=dtype)
    return x, background


def _sums(a: torch.Tensor) -> torch.Tensor:
    return a.detach().double().flatten(1).sum(1)


# --------------------------------------------------------------------------- known answers


def test_linear_model_single_background_is_exact() -> None:
    """f(x) = w . vec(x) + b: every draw gives w * (x - x'), so phi sums to f(x) - f(x')."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 4)).double().eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 3, 5, 5, generator=g, dtype=torch.float64)
    background = torch.randn(1, 3, 5, 5, generator=g, dtype=torch.float64)
    target = [0, 2, 3]
    w = model[1].weight.detach()

    phi = expected_gradients(model, x, target, background=background, n_samples=7, batch_size=4, seed=0)
    assert phi.shape == x.shape and phi.dtype == x.dtype
    expected = w[target].view(3, 3, 5, 5) * (x - background)
    torch.testing.assert_close(phi, expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        gap = model(x)[range(3), target] - model(background)[0, target]
    torch.testing.assert_close(_sums(phi), gap, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(expected_output_gap(model, x, target, background=background), gap,
                               rtol=1e-12, atol=1e-12)

    # Layer form: the Flatten's output is vec(x); attributions are w * (vec(x) - vec(x')).
    phi_layer = expected_gradients(model, x, target, background=background, layer=model[0], n_samples=5, seed=1)
    assert phi_layer.shape == (3, 75)
    torch.testing.assert_close(phi_layer, expected.flatten(1), rtol=1e-12, atol=1e-12)


def test_quadratic_model_matches_analytic_expectation() -> None:
    """f(x) = sum(x^2): grad at x' + t(x-x') is 2(x' + t(x-x')); E_t gives (x + x') * (x - x') = x^2 - x'^2."""

    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.square().flatten(1).sum(1, keepdim=True)

    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64)
    background = torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64)
    phi = expected_gradients(Square(), x, 0, background=background, n_samples=4000, batch_size=512, seed=0)
    exact = x.square() - background.square()
    # Per element the draw is 2(x' + t d) d with t ~ U(0,1): sd = 2 |d|^2 / sqrt(12).
    d = (x - background).abs()
    se = 2 * d.square() / np.sqrt(12) / np.sqrt(4000)
    assert ((phi - exact).abs() <= 4.5 * se + 1e-12).all()


# --------------------------------------------------------------------------- completeness on a ReLU CNN


@pytest.mark.parametrize(
    "where",
    [(None, "output"), ("conv2", "output"), ("conv2", "input"), ("relu1", "output"), ("fc", "input")],
)
def test_relu_cnn_sums_to_output_gap_within_sampling_error(where: tuple[str | None, str]) -> None:
    model = _cnn(torch.float64)
    x, background = _data(torch.float64)
    target = [0, 2]
    name, attribute_to = where
    layer = None if name is None else getattr(model, name)
    gap = expected_output_gap(model, x, target, background=background)
    # 16 independent runs of 64 draws: their spread estimates the Monte Carlo error.
    runs = torch.stack([
        _sums(expected_gradients(model, x, target, background=background, layer=layer, attribute_to=attribute_to,
                                 n_samples=64, batch_size=64, seed=s))
        for s in range(16)
    ])
    mean, se = runs.mean(0), runs.std(0) / 4.0
    assert (gap.abs() > 0.3).all(), "test data must give a non-trivial gap"
    assert ((mean - gap).abs() <= 4.5 * se + 1e-9).all(), (mean, gap, se)
    assert ((mean - gap).abs() / gap.abs() < 0.1).all()


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_check_reports_draw_sums_and_standard_error(layer_name: str | None) -> None:
    model = _cnn(torch.float64)
    x, background = _data(torch.float64)
    layer = None if layer_name is None else getattr(model, layer_name)
    kwargs = {"layer": layer, "n_samples": 300, "batch_size": 128, "seed": 3}
    check = expected_gradients(model, x, [0, 2], background=background, diagnostics=True, **kwargs)
    plain = expected_gradients(model, x, [0, 2], background=background, **kwargs)
    torch.testing.assert_close(check.attributions, plain, rtol=0, atol=0)  # same draws, same numbers
    assert check.draw_sums.shape == (2, 300)
    torch.testing.assert_close(check.total, _sums(plain), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(check.gap, expected_output_gap(model, x, [0, 2], background=background))
    assert (check.standard_error > 0).all()
    z = (check.total - check.gap) / check.standard_error
    assert (z.abs() < 4).all(), z
    table = check.table()
    assert list(table.columns) == ["sum of attributions", "standard error", "f(x) - E f(x')", "z = (sum - gap) / SE"]
    np.testing.assert_allclose(table.iloc[:, 3], z.numpy())


def test_check_on_linear_model_has_no_sampling_error() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double().eval()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    background = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    check = expected_gradients(model, x, 1, background=background, n_samples=5, seed=0, diagnostics=True)
    torch.testing.assert_close(check.draw_sums, check.gap.view(2, 1).expand(2, 5), rtol=1e-12, atol=1e-12)
    assert float(check.standard_error.max()) < 1e-12
    single = expected_gradients(model, x, 1, background=background, n_samples=1, seed=0, diagnostics=True)
    assert torch.isnan(single.standard_error).all()
    assert isinstance(check, ExpectedGradientsCheck)
    assert check.gap.dtype == check.draw_sums.dtype == torch.float64


# --------------------------------------------------------------------------- targets as score callables


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_logit_difference_is_the_difference_of_two_runs(layer_name: str | None) -> None:
    """EG is linear in the score and the draws depend on (seed, i, j) only: EG(z0 - z2) = EG(0) - EG(2)."""
    model = _cnn(torch.float64)
    x, background = _data(torch.float64)
    layer = None if layer_name is None else getattr(model, layer_name)
    kwargs = {"background": background, "layer": layer, "n_samples": 9, "batch_size": 5, "seed": 3}
    diff = expected_gradients(model, x, lambda z: z[:, 0] - z[:, 2], **kwargs)
    a, b = expected_gradients(model, x, 0, **kwargs), expected_gradients(model, x, 2, **kwargs)
    torch.testing.assert_close(diff, a - b, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(diff, a)
    gap = expected_output_gap(model, x, lambda z: z[:, 0] - z[:, 2], background=background)
    torch.testing.assert_close(gap, expected_output_gap(model, x, 0, background=background)
                               - expected_output_gap(model, x, 2, background=background), rtol=1e-12, atol=1e-12)
    check = expected_gradients(model, x, lambda z: z[:, 0] - z[:, 2], diagnostics=True, **kwargs)
    torch.testing.assert_close(check.attributions, diff, rtol=0, atol=0)
    torch.testing.assert_close(check.gap, gap)


def test_callable_target_on_a_linear_model_is_exact() -> None:
    """score = log-softmax of class 1 is not linear, but a weighted sum of logits is: phi = (w1 - w0/2) * (x - x')."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double().eval()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    background = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    w = model[1].weight.detach()
    phi = expected_gradients(model, x, lambda z: z[:, 1] - 0.5 * z[:, 0], background=background, n_samples=3)
    torch.testing.assert_close(phi, (w[1] - 0.5 * w[0]).view(1, 3, 2, 2) * (x - background), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [lambda z: z, lambda z: z[:1, 0], lambda z: "score"])
def test_bad_score_callable_is_refused_and_model_restored(bad) -> None:
    model = _dirty_model()
    before = model_fingerprint(model)
    x, background = _data()
    for layer in (None, model.conv2):
        with pytest.raises(ValueError, match="target callable"):
            expected_gradients(model, x, bad, background=background, layer=layer, n_samples=2)
        with pytest.raises(ValueError, match="target callable"):
            expected_gradients(model, x, bad, background=background, layer=layer, n_samples=2, diagnostics=True)
    with pytest.raises(ValueError, match="target callable"):
        expected_output_gap(model, x, bad, background=background)
    assert model_fingerprint(model) == before


# --------------------------------------------------------------------------- composition with noise_tunnel


@pytest.mark.parametrize("target", [1, [0, 2], lambda z: z[:, 0] - z[:, 1]])
def test_noise_tunnel_smooths_expected_gradients(target) -> None:
    """noise_tunnel(partial(EG, ...)) = mean over j of EG at add_noise(x, level, seed=s, sample_index=j)."""
    model = _cnn(torch.float64)
    x, background = _data(torch.float64)
    method = functools.partial(expected_gradients, background=background, n_samples=8, seed=4)
    smoothed = noise_tunnel(method, model, x, target, n_samples=3, noise_level=0.1, seed=7)
    expected = torch.stack([method(model, add_noise(x, 0.1, seed=7, sample_index=j), target)
                            for j in range(3)]).mean(0)
    assert smoothed.shape == x.shape
    torch.testing.assert_close(smoothed, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(smoothed, method(model, x, target))
    # a layer method composes too
    layer_method = functools.partial(expected_gradients, background=background, layer=model.conv2, n_samples=4)
    out = noise_tunnel(layer_method, model, x, target, n_samples=2, seed=7)
    assert out.shape == (2, 8, 6, 6)


# --------------------------------------------------------------------------- device policy


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_runs_where_the_model_is_and_returns_where_the_inputs_were(layer_name, fake_model_device) -> None:
    model = _cnn()
    x, background = _data(n=2, m=3)
    layer = None if layer_name is None else getattr(model, layer_name)
    out = expected_gradients(model, x, 1, background=background, layer=layer, n_samples=3)
    assert (2, 3, 12, 12) in fake_model_device and (3, 3, 12, 12) in fake_model_device  # inputs and background
    assert out.device == x.device and out.dtype == x.dtype
    check = expected_gradients(model, x, 1, background=background, layer=layer, n_samples=3, diagnostics=True)
    assert all(t.device == x.device for t in check)
    assert expected_output_gap(model, x, 1, background=background).device == x.device


def test_layer_attribution_shapes() -> None:
    model = _cnn()
    x, background = _data()
    out = expected_gradients(model, x, 1, background=background, layer=model.conv2, n_samples=4, seed=0)
    inp = expected_gradients(model, x, 1, background=background, layer=model.conv2, attribute_to="input",
                             n_samples=4, seed=0)
    assert out.shape == (2, 8, 6, 6)
    assert inp.shape == (2, 6, 12, 12)
    # conv2's input is relu1's output: the same tensor, the same draws, the same attributions.
    same = expected_gradients(model, x, 1, background=background, layer=model.relu1, n_samples=4, seed=0)
    torch.testing.assert_close(inp, same, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- seeding and batching


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_batch_size_invariance_and_seeding(layer_name: str | None) -> None:
    model = _cnn(torch.float64)
    x, background = _data(torch.float64, n=3)
    layer = None if layer_name is None else getattr(model, layer_name)
    runs = [
        expected_gradients(model, x, [0, 1, 2], background=background, layer=layer, n_samples=10, batch_size=b, seed=5)
        for b in (1, 7, 30, 64)
    ]
    for r in runs[1:]:
        torch.testing.assert_close(r, runs[0], rtol=1e-10, atol=1e-12)
    other = expected_gradients(model, x, [0, 1, 2], background=background, layer=layer, n_samples=10, seed=6)
    assert not torch.allclose(other, runs[0])


def test_draws_depend_only_on_seed_image_and_sample() -> None:
    """Image i's draws do not depend on the other images, and more samples keep the first draws."""
    model = _cnn(torch.float64)
    x, background = _data(torch.float64, n=3)
    together = expected_gradients(model, x, [0, 1, 2], background=background, layer=model.conv2, n_samples=6, seed=4)
    alone = expected_gradients(model, x[:1], 0, background=background, layer=model.conv2, n_samples=6, seed=4)
    torch.testing.assert_close(together[:1], alone, rtol=1e-10, atol=1e-12)

    index5, t5 = _draws(4, 2, 5, 4)
    index10, t10 = _draws(4, 2, 10, 4)
    for i in range(2):
        assert torch.equal(index10[i * 10:i * 10 + 5], index5[i * 5:i * 5 + 5])
        assert torch.equal(t10[i * 10:i * 10 + 5], t5[i * 5:i * 5 + 5])
    assert ((t10 >= 0) & (t10 < 1)).all() and ((index10 >= 0) & (index10 < 4)).all()


def test_does_not_touch_global_rng() -> None:
    model = _cnn()
    x, background = _data()
    torch.manual_seed(123)
    np.random.seed(123)
    expected_t, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    expected_gradients(model, x, 0, background=background, layer=model.conv2, n_samples=3, seed=None)
    torch.testing.assert_close(torch.rand(3), expected_t)
    np.testing.assert_array_equal(np.random.rand(3), expected_np)


# --------------------------------------------------------------------------- cost: nothing recomputed


def test_layer_runs_shallow_part_once_per_batch_on_one_image() -> None:
    """Activations are computed once; each batch of draws calls the shallow part on one image only."""
    torch.manual_seed(0)
    counter = BatchCounter()
    model = nn.Sequential(counter, nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 2)).eval()
    x, background = _data(n=2, m=5)
    expected_gradients(model, x, 1, background=background, layer=model[2], n_samples=12, batch_size=8, seed=0)
    n_batches = -(-2 * 12 // 8)
    # inputs (one chunk of 2), background (one chunk of 5), the separation check (1), the draws (3 x 1)
    assert counter.sizes == [2, 5, 1] + [1] * n_batches


# --------------------------------------------------------------------------- agreement with shap


def _exact_input_eg(model: nn.Module, x: torch.Tensor, background: torch.Tensor, target: int,
                    n_t: int = 256) -> torch.Tensor:
    """E over all background images and t (midpoint rule) of grad f(x' + t(x-x')) * (x-x')."""
    ts = (torch.arange(n_t, dtype=x.dtype) + 0.5) / n_t
    total = torch.zeros_like(x)
    for xb in background:
        z = (xb + ts.view(-1, 1, 1, 1) * (x[0] - xb)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(z)[:, target].sum(), z)
        total += grad.mean(0, keepdim=True) * (x - xb)
    return total / background.shape[0]


def test_agrees_with_shap_gradient_explainer_at_the_input() -> None:
    shap = pytest.importorskip("shap")
    model = _cnn()
    x, background = _data(n=1)
    with torch.no_grad():
        target = int(model(x).argmax())
    model64 = _cnn(torch.float64)
    exact = _exact_input_eg(model64, x.double(), background.double(), target)

    ours = expected_gradients(model, x, target, background=background, n_samples=1500, batch_size=500, seed=0).double()
    state = np.random.get_state()  # shap reseeds NumPy's global RNG; put it back
    try:
        explainer = shap.GradientExplainer(model, background, batch_size=500)
        values, ranks = explainer.shap_values(x, nsamples=1500, ranked_outputs=1, rseed=0)
    finally:
        np.random.set_state(state)
    assert int(ranks[0, 0]) == target
    theirs = torch.as_tensor(np.asarray(values)[..., 0], dtype=torch.float64)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    # Both are unbiased Monte Carlo estimates of the same expectation (observed: ~1.2 % each).
    assert rel(ours, exact) < 0.04
    assert rel(theirs, exact) < 0.04
    assert rel(ours, theirs) < 0.06
    # ...and far from an estimate for another class (the comparison can fail).
    wrong = expected_gradients(model, x, (target + 1) % 3, background=background, n_samples=300, seed=0).double()
    assert rel(wrong, exact) > 0.5


def test_shap_layer_form_explains_the_layer_input_with_another_estimator() -> None:
    """shap's (model, layer) attributes the layer's input and does not sum to f(x) - E f(x')."""
    shap = pytest.importorskip("shap")
    model = _cnn()
    x, background = _data(n=1)
    with torch.no_grad():
        target = int(model(x).argmax())
    state = np.random.get_state()
    try:
        explainer = shap.GradientExplainer((model, model.conv2), background)
        values, _ = explainer.shap_values(x, nsamples=300, ranked_outputs=1, rseed=0)
    finally:
        np.random.set_state(state)
    theirs = np.asarray(values)[..., 0]
    ours = expected_gradients(model, x, target, background=background, layer=model.conv2, attribute_to="input",
                              n_samples=300, seed=0)
    assert theirs.shape == tuple(ours.shape) == (1, 6, 12, 12)  # conv2's input = relu1's output
    gap = float(expected_output_gap(model, x, target, background=background)[0])
    assert abs(float(ours.sum()) - gap) < 0.1 * abs(gap)
    assert abs(float(theirs.sum()) - gap) > 0.2 * abs(gap)


# --------------------------------------------------------------------------- model left as found


def _dirty_model() -> SmallCNN:
    """Train mode, mixed requires_grad, an existing .grad and a user hook."""
    model = _cnn()
    model.train()
    model.conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.relu1.register_forward_hook(lambda *args: None)
    return model


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_model_left_as_found(layer_name: str | None) -> None:
    model = _dirty_model()
    before = model_fingerprint(model)
    x, background = _data()
    layer = None if layer_name is None else getattr(model, layer_name)
    expected_gradients(model, x, 1, background=background, layer=layer, n_samples=3, seed=0)
    expected_output_gap(model, x, 1, background=background)
    assert model_fingerprint(model) == before


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_model_left_as_found_on_error(layer_name: str | None) -> None:
    model = _dirty_model()
    before = model_fingerprint(model)
    x, background = _data()
    layer = None if layer_name is None else getattr(model, layer_name)
    with pytest.raises(ValueError, match="target"):  # out of range, found only after a forward pass
        expected_gradients(model, x, 7, background=background, layer=layer, n_samples=3, seed=0)
    assert model_fingerprint(model) == before


def test_layer_that_is_bypassed_is_refused_and_model_restored() -> None:
    torch.manual_seed(0)
    model = Residual()
    before = model_fingerprint(model)
    x, background = _data()
    for images in (x, x[:1]):  # one image too: the dummy the check runs on is not the input
        with pytest.raises(ValueError, match="does not separate"):
            expected_gradients(model, images, 0, background=background, layer=model.conv2, n_samples=2, seed=0)
    assert model_fingerprint(model) == before
    # conv1 does separate it.
    phi = expected_gradients(model.double(), x.double(), 0, background=background.double(), layer=model.conv1,
                             n_samples=2, seed=0)
    assert phi.shape == (2, 4, 12, 12)


def test_layer_called_twice_or_never_is_refused_and_no_hook_is_left() -> None:
    torch.manual_seed(0)
    model = Shared()
    model.conv.register_forward_hook(lambda *args: None)  # someone else's hook stays
    before = model_fingerprint(model)
    x, background = _data()
    with pytest.raises(ValueError, match="called 2 times"):
        expected_gradients(model, x, 0, background=background, layer=model.relu, n_samples=2, seed=0)
    assert model_fingerprint(model) == before
    for at in ("output", "input"):
        with pytest.raises(ValueError, match="called 0 times"):
            expected_gradients(model, x, 0, background=background, layer=model.unused, attribute_to=at,
                               n_samples=2, seed=0)
        assert model_fingerprint(model) == before


class Exploding(nn.Module):
    """SmallCNN whose fc raises on its ``fail_at``-th call (counting from 1)."""

    def __init__(self, fail_at: int, error: type = RuntimeError) -> None:
        super().__init__()
        self.net = _cnn()
        self.calls = 0
        self.fail_at = fail_at
        self.error = error
        self.net.fc.register_forward_pre_hook(self._count)  # the test's own hook: must survive

    def _count(self, _module, _args) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error("boom")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# layer form, batch 4, 2 images x 6 draws: fc runs for the inputs (1), the separation check (1), then 3 draw
# batches (the background pass stops at the layer). Input form: fc runs once per draw batch.
@pytest.mark.parametrize(("layer_name", "fail_at"), [("conv2", 1), ("conv2", 2), ("conv2", 4), (None, 2),
                                                     ("relu1", 3), ("conv2", 6)])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_inside_the_model_mid_run_leaves_no_hook_behind(layer_name, fail_at, error) -> None:
    model = Exploding(fail_at, error)
    model.net.train()
    model.net.fc.weight.grad = torch.ones_like(model.net.fc.weight)
    before = model_fingerprint(model)
    x, background = _data()
    layer = None if layer_name is None else getattr(model.net, layer_name)
    # a RuntimeError during the separation check is reported as "does not separate ... (boom)"
    with pytest.raises((error, ValueError), match="boom"):
        expected_gradients(model, x, 1, background=background, layer=layer, n_samples=6, batch_size=4,
                           diagnostics=True)
    assert model.calls == fail_at
    assert model_fingerprint(model) == before


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inputs": np.zeros((1, 3, 12, 12))}, TypeError, "inputs"),
        ({"inputs": torch.zeros(3, 12, 12)}, ValueError, "inputs"),
        ({"inputs": torch.zeros(1, 3, 12, 12, dtype=torch.long)}, ValueError, "inputs"),
        ({"background": torch.zeros(2, 3, 10, 12)}, ValueError, "background"),
        ({"background": torch.zeros(0, 3, 12, 12)}, ValueError, "background"),
        ({"background": torch.full((1, 3, 12, 12), float("nan"))}, ValueError, "background"),
        ({"background": [0.0]}, TypeError, "background"),
        ({"target": 3}, ValueError, "target"),
        ({"target": [0, 1, 2]}, ValueError, "target"),
        ({"target": 0.5}, ValueError, "target"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, ValueError, "n_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": True}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, ValueError, "seed"),
        ({"attribute_to": "middle"}, ValueError, "attribute_to"),
        ({"diagnostics": "yes"}, TypeError, "diagnostics"),
        ({"progress": 1}, TypeError, "progress"),
        ({"target": lambda z: z}, ValueError, "target"),
        ({"layer": "conv2"}, TypeError, "layer"),
        ({"layer": nn.Conv2d(3, 6, 3)}, ValueError, "layer"),
        ({"model": "resnet50"}, TypeError, "model"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    model = _cnn()
    x, background = _data()
    args = {"model": model, "inputs": x, "background": background, "target": 0, "n_samples": 2, "seed": 0}
    if "background" in kwargs:  # check the layer path too, not only the input path
        args["layer"] = model.conv2
    args.update(kwargs)
    before = model_fingerprint(model)
    with pytest.raises(error, match=match):
        expected_gradients(args.pop("model"), args.pop("inputs"), args.pop("target"), **args)
    assert model_fingerprint(model) == before


def test_background_is_a_keyword_and_target_comes_third() -> None:
    model = _cnn()
    x, background = _data()
    with pytest.raises(TypeError):
        expected_gradients(model, x, background, 0)  # the old order
    with pytest.raises(TypeError):
        expected_gradients(model, x, 0)  # background is required
    with pytest.raises(TypeError):
        expected_output_gap(model, x, background, 0)


def test_model_with_wrong_output_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1)).eval()  # returns feature maps, not logits
    x, background = _data()
    with pytest.raises(ValueError, match="logits"):
        expected_gradients(model, x, 0, background=background, n_samples=2, seed=0)
    with pytest.raises(ValueError, match="logits"):
        expected_gradients(model, x, 0, background=background, layer=model[0], n_samples=2, seed=0)
    with pytest.raises(ValueError, match="logits"):
        expected_output_gap(model, x, 0, background=background)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_with_cpu_inputs_matches_cpu() -> None:
    """The model's device decides where the work runs; results come back on the inputs' device."""
    model = _cnn(torch.float64)
    x, background = _data(torch.float64)
    cpu = expected_gradients(model, x, [0, 1], background=background, layer=model.conv2, n_samples=16, seed=2)
    model_cuda = _cnn(torch.float64).cuda()
    before = model_fingerprint(model_cuda)
    gpu = expected_gradients(model_cuda, x, [0, 1], background=background, layer=model_cuda.conv2, n_samples=16,
                             batch_size=5, seed=2)
    assert gpu.device == x.device
    torch.testing.assert_close(gpu, cpu, rtol=1e-8, atol=1e-10)
    gpu_in = expected_gradients(model_cuda, x.cuda(), [0, 1], background=background.cuda(), n_samples=16, seed=2)
    assert gpu_in.device.type == "cuda"
    torch.testing.assert_close(gpu_in.cpu(),
                               expected_gradients(model, x, [0, 1], background=background, n_samples=16, seed=2),
                               rtol=1e-8, atol=1e-10)
    assert model_fingerprint(model_cuda) == before


def test_progress_bar_option_does_not_change_the_result() -> None:
    from interp_helpers.attribution.expected_gradients import expected_gradients as eg

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, background = torch.rand(2, 3, 2, 2), torch.rand(4, 3, 2, 2)
    a = eg(model, x, 1, background=background, n_samples=6, batch_size=4, seed=0, progress=True)
    b = eg(model, x, 1, background=background, n_samples=6, batch_size=4, seed=0)
    torch.testing.assert_close(a, b)
    with pytest.raises(TypeError, match="progress"):
        eg(model, x, 1, background=background, n_samples=2, progress="yes")
