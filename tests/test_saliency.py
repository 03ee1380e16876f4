"""Known-answer, consistency, state and bad-input tests for interp_helpers.attribution.noise.

The analytic model is f(x) = sum(w * x^2 / 2), whose input gradient is w * x.
With x + eps, eps ~ N(0, sigma^2): E[grad] = w x, E[grad^2] = w^2 (x^2 + sigma^2),
Var[grad] = w^2 sigma^2. Estimates are compared with these in units of their
standard error.
"""
from __future__ import annotations

import random
import types

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers import _rng
from interp_helpers.hooks import model_fingerprint
from interp_helpers.attribution.core import default_batch_size
from interp_helpers.attribution.gradient import gradient, gradient_x_input
from interp_helpers.attribution.noise import _fill_noise, add_noise, noise_sigma, smoothgrad


class Quadratic(nn.Module):
    """logits[:, 0] = sum(w * x^2 / 2) (gradient w * x); logits[:, 1] = sum(x) (gradient 1)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        quad = (self.w * x.square() / 2).flatten(1).sum(1)
        return torch.stack([quad, x.flatten(1).sum(1)], dim=1)


def small_cnn(seed: int = 0, *, dropout_bn: bool = False) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 6, 3, padding=1)]
    if dropout_bn:
        layers.append(nn.BatchNorm2d(6))
    layers += [nn.Softplus(beta=2.0), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.Softplus(beta=2.0),
               nn.Flatten()]
    if dropout_bn:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(8 * 4 * 4, 5))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.4)
    return model.eval()


def images(n: int = 2, seed: int = 1, size: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture()
def quad_setup():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64) * 2 + 0.5
    x = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    x[1] *= 3.0  # a different range, hence a different sigma
    return Quadratic(w), w, x


# --------------------------------------------------------------------------- known answers


def test_gradient_and_gradient_x_input_known_answer(quad_setup):
    model, w, x = quad_setup
    torch.testing.assert_close(gradient(model, x, 0), w * x)
    torch.testing.assert_close(gradient_x_input(model, x, 0), w * x * x)
    torch.testing.assert_close(gradient(model, x, 1), torch.ones_like(x))


def test_noise_sigma_is_level_times_range(quad_setup):
    _, _, x = quad_setup
    expected = torch.stack([0.2 * (x[i].max() - x[i].min()) for i in range(2)])
    torch.testing.assert_close(noise_sigma(x, 0.2), expected)
    assert noise_sigma(x, 0.2)[1] > 2 * noise_sigma(x, 0.2)[0]


@pytest.mark.parametrize("antithetic", [False, True])
def test_all_variants_match_expectations_at_large_n(quad_setup, antithetic):
    model, w, x = quad_setup
    n, level = 8000, 0.2
    sigma = noise_sigma(x, level).view(-1, 1, 1, 1)
    kw = dict(n_samples=n, noise_level=level, batch_size=4000, seed=3, antithetic=antithetic)
    sg = smoothgrad(model, x, 0, variant="smoothgrad", **kw)
    sq = smoothgrad(model, x, 0, variant="smoothgrad_sq", **kw)
    vg = smoothgrad(model, x, 0, variant="vargrad", **kw)

    e_sq = w**2 * (x**2 + sigma**2)
    e_var = w**2 * sigma**2
    if antithetic:  # eps and -eps cancel exactly in the mean of a linear gradient
        torch.testing.assert_close(sg, w * x, rtol=0, atol=1e-12)
        # pairs are perfectly correlated: n/2 independent draws for the squared terms
        n = n // 2
    else:
        z_mean = (sg - w * x) / (w.abs() * sigma / n**0.5)
        assert z_mean.abs().max() < 4.5, z_mean.abs().max()
    se_sq = w**2 * torch.sqrt(4 * x**2 * sigma**2 + 2 * sigma**4) / n**0.5
    z_sq = (sq - e_sq) / se_sq
    assert z_sq.abs().max() < 4.5, z_sq.abs().max()
    z_var = (vg - e_var) / (e_var * (2 / n) ** 0.5)
    assert z_var.abs().max() < 4.5, z_var.abs().max()


def test_vargrad_is_stable_when_the_mean_dominates():
    # gradient = 1e4 + w * x: E[g^2] - E[g]^2 in float32 would lose everything to cancellation
    class Shifted(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.w = nn.Parameter(w)

        def forward(self, x):
            return (1e4 * x + self.w * x.square() / 2).flatten(1).sum(1, keepdim=True)

    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 1, 4, 4, generator=g) + 0.5
    x = torch.randn(1, 1, 4, 4, generator=g)
    n = 2000
    vg = smoothgrad(Shifted(w), x, 0, n_samples=n, noise_level=0.2, variant="vargrad", seed=0, batch_size=64)
    expected = w**2 * noise_sigma(x, 0.2).view(-1, 1, 1, 1) ** 2
    z = (vg - expected) / (expected * (2 / n) ** 0.5)
    assert z.abs().max() < 5, z.abs().max()


def test_constant_gradient_has_zero_variance(quad_setup):
    model, _, x = quad_setup
    sg = smoothgrad(model, x, 1, n_samples=7, seed=0)
    vg = smoothgrad(model, x, 1, n_samples=7, seed=0, variant="vargrad")
    torch.testing.assert_close(sg, torch.ones_like(x))
    torch.testing.assert_close(vg, torch.zeros_like(x), rtol=0, atol=1e-12)


def test_zero_noise_reduces_to_gradient():
    model, x = small_cnn(), images()
    g = gradient(model, x, [1, 2])
    torch.testing.assert_close(smoothgrad(model, x, [1, 2], n_samples=3, noise_level=0.0, seed=0), g)
    torch.testing.assert_close(
        smoothgrad(model, x, [1, 2], n_samples=3, noise_level=0.0, variant="smoothgrad_sq", seed=0), g**2
    )
    vg = smoothgrad(model, x, [1, 2], n_samples=3, noise_level=0.0, variant="vargrad", seed=0)
    assert vg.abs().max() < 1e-10


def test_add_noise_is_the_noise_smoothgrad_uses(quad_setup):
    # for f with gradient w * x, a single sample's SmoothGrad is w * (noisy copy)
    model, w, x = quad_setup
    for anti in (False, True):
        noisy = torch.stack([add_noise(x, 0.3, seed=5, sample_index=j, antithetic=anti) for j in range(3)])
        sg = smoothgrad(model, x, 0, n_samples=3, noise_level=0.3, seed=5, antithetic=anti)
        torch.testing.assert_close(sg, w * noisy.mean(0))
    torch.testing.assert_close(add_noise(x, 0.3, seed=5, sample_index=1, antithetic=True) - x,
                               x - add_noise(x, 0.3, seed=5, sample_index=0, antithetic=True))
    # the noise has the requested per-image sigma
    big = torch.zeros(2, 3, 64, 64, dtype=torch.float64)
    big[:, :, 0, 0] = torch.tensor([1.0, 4.0]).view(2, 1)
    eps = add_noise(big, 0.1, seed=1) - big
    torch.testing.assert_close(eps.flatten(1).std(1), torch.tensor([0.1, 0.4], dtype=torch.float64), rtol=0.03, atol=0)


# --------------------------------------------------------------------------- batching, seeds, RNG


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("antithetic", [False, True])
def test_result_does_not_depend_on_batch_size(variant, antithetic):
    model, x = small_cnn(), images(3)
    kw = dict(n_samples=9, noise_level=0.2, variant=variant, seed=11, antithetic=antithetic)
    ref = smoothgrad(model, x, [0, 3, 4], batch_size=1, **kw)
    for bs in (2, 4, 9, 27, 100, None):
        torch.testing.assert_close(smoothgrad(model, x, [0, 3, 4], batch_size=bs, **kw), ref,
                                   rtol=1e-4, atol=1e-6)


def test_batched_images_equal_one_image_at_a_time():
    model, x = small_cnn(), images(3)
    together = smoothgrad(model, x, [0, 3, 4], n_samples=6, seed=2, batch_size=5)
    # image i of a batch uses the noise streams (seed, i, j); image 0 alone uses (seed, 0, j)
    alone = smoothgrad(model, x[:1], 0, n_samples=6, seed=2, batch_size=4)
    torch.testing.assert_close(together[:1], alone, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gradient(model, x, [0, 3, 4], batch_size=1), gradient(model, x, [0, 3, 4]),
                               rtol=1e-4, atol=1e-6)


def test_seeds():
    model, x = small_cnn(), images()
    a = smoothgrad(model, x, 1, n_samples=4, seed=0)
    assert torch.equal(a, smoothgrad(model, x, 1, n_samples=4, seed=0))
    assert not torch.allclose(a, smoothgrad(model, x, 1, n_samples=4, seed=1))
    assert torch.equal(smoothgrad(model, x, 1, n_samples=4), a)  # the default seed is 0: reproducible
    assert not torch.allclose(smoothgrad(model, x, 1, n_samples=4, seed=None),
                              smoothgrad(model, x, 1, n_samples=4, seed=None))  # fresh OS entropy


def test_antithetic_pairs_are_opposite():
    buf = torch.empty(4, 3, 5, 5)
    _fill_noise(buf, [0, 0, 0, 0], [0, 1, 2, 3], seed=9, antithetic=True)
    assert torch.equal(buf[1], -buf[0]) and torch.equal(buf[3], -buf[2])
    assert not torch.allclose(buf[0], buf[2])
    iid = torch.empty(2, 3, 5, 5)
    _fill_noise(iid, [0, 0], [0, 1], seed=9, antithetic=False)
    assert torch.equal(iid[0], buf[0]) and not torch.allclose(iid[1], -iid[0])


def test_global_rng_untouched():
    model, x = small_cnn(), images()
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    smoothgrad(model, x, 1, n_samples=3, seed=0)
    smoothgrad(model, x, 1, n_samples=3, seed=None, antithetic=True)
    add_noise(x, 0.1)
    gradient(model, x, 1)
    assert torch.equal(torch_state, torch.get_rng_state())
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert py_state == random.getstate()


# --------------------------------------------------------------------------- model state


class Recorder(nn.Module):
    """Wraps a model; records batch sizes and whether any parameter required grad; may raise."""

    def __init__(self, inner: nn.Module, raise_on_call: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.raise_on_call = raise_on_call
        self.batches: list[int] = []
        self.param_requires_grad: list[bool] = []
        self.training_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        self.param_requires_grad.append(any(p.requires_grad for p in self.parameters()))
        self.training_seen.append(any(m.training for m in self.modules()))
        if self.raise_on_call is not None and len(self.batches) == self.raise_on_call:
            raise RuntimeError("boom")
        return self.inner(x)


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers()}


def test_train_mode_model_left_as_found_and_evaluated_in_eval_mode():
    model = small_cnn(dropout_bn=True)
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
    model.train()
    rec = Recorder(model)
    rec.train()
    handle = rec.register_forward_hook(lambda *a: None)
    fp, bufs = model_fingerprint(rec), _buffers(rec)
    x = images()
    out = smoothgrad(rec, x, [1, 2], n_samples=5, seed=0, batch_size=3)
    assert model_fingerprint(rec) == fp
    assert all(torch.equal(v, _buffers(rec)[k]) for k, v in bufs.items())
    assert rec.training and model[1].training and model[-2].training
    assert not any(rec.training_seen) and not any(rec.param_requires_grad)
    # eval mode means deterministic (no dropout) and equal to an explicit eval-mode run
    model.eval()
    torch.testing.assert_close(out, smoothgrad(model, x, [1, 2], n_samples=5, seed=0))
    handle.remove()


def test_model_restored_when_it_raises_midway():
    model = small_cnn()
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    model[0].weight.requires_grad_(False)
    rec = Recorder(model, raise_on_call=2)
    rec.train()
    fp = model_fingerprint(rec)
    grads = [p.grad.clone() for p in rec.parameters()]
    with pytest.raises(RuntimeError, match="boom"):
        smoothgrad(rec, images(), 1, n_samples=4, seed=0, batch_size=3)
    assert rec.batches == [3, 3]
    assert model_fingerprint(rec) == fp
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, rec.parameters()))


def test_no_parameter_gradients_and_bounded_batches():
    rec = Recorder(small_cnn())
    smoothgrad(rec, images(3), 1, n_samples=7, seed=0, batch_size=4)
    assert max(rec.batches) <= 4 and sum(rec.batches) == 21
    assert all(p.grad is None for p in rec.parameters())
    assert all(p.requires_grad for p in rec.parameters())
    rec.batches.clear()
    gradient(rec, images(3), 1)
    # one single-image probe measures the activation memory per image (interp_helpers.memory), then one batch
    assert rec.batches == [1, 3] and all(p.grad is None for p in rec.parameters())
    rec.batches.clear()
    gradient(rec, images(3), 1)
    assert rec.batches == [3]  # the measurement is cached per model


def test_default_batch_size_is_bounded_by_pixels():
    assert default_batch_size(torch.zeros(1, 3, 224, 224), 50) == 8
    assert default_batch_size(torch.zeros(1, 3, 224, 224), 5) == 5
    assert default_batch_size(torch.zeros(1, 3, 1024, 1024), 50) == 1
    rec = Recorder(small_cnn())
    smoothgrad(rec, images(1, size=8), 1, n_samples=10, seed=0)
    assert rec.batches == [1, 10]  # a one-image memory probe (interp_helpers.memory), then one batch


def test_works_inside_no_grad_and_with_loaded_model_like_object():
    model, x = small_cnn(), images()
    ref = smoothgrad(model, x, 1, n_samples=3, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(smoothgrad(model, x, 1, n_samples=3, seed=0), ref)
    loaded = types.SimpleNamespace(module=model, num_classes=5)
    torch.testing.assert_close(smoothgrad(loaded, x, 1, n_samples=3, seed=0), ref)
    with pytest.raises(ValueError, match="target"):
        smoothgrad(loaded, x, 5, n_samples=3, seed=0)


def test_progress_bar_does_not_change_result():
    model, x = small_cnn(), images()
    torch.testing.assert_close(smoothgrad(model, x, 1, n_samples=3, seed=0, progress=True),
                               smoothgrad(model, x, 1, n_samples=3, seed=0))


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("antithetic", [False, True])
def test_checkpoints_equal_separate_runs(variant, antithetic):
    rec = Recorder(small_cnn())
    x = images(2)
    kw = dict(noise_level=0.2, variant=variant, seed=7, antithetic=antithetic, batch_size=3)
    path = smoothgrad(rec, x, [1, 4], n_samples=[1, 2, 5, 8], **kw)
    assert sum(rec.batches) == 2 * 8  # one run of max(checkpoints) samples
    assert len(path) == 4
    for n, est in zip([1, 2, 5, 8], path):  # the same noise; float32 sums merged in another order
        torch.testing.assert_close(est, smoothgrad(rec, x, [1, 4], n_samples=n, **kw), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("counts", [[], [0, 2], [3, 3], [4, 2], "12", 0, [1.5]])
def test_checkpoints_bad_values(counts):
    with pytest.raises(ValueError, match="n_samples"):
        smoothgrad(small_cnn(), images(), 1, n_samples=counts, seed=0)


# --------------------------------------------------------------------------- Captum


def _patched_captum_noise(monkeypatch, seed: int):
    """Make Captum's NoiseTunnel draw exactly our noise for (image, sample) in order."""
    from captum.attr import NoiseTunnel

    state = {"offset": 0}

    def add_noise_to_input(input, stdev, nt_samples_partition):
        n_img, k = input.shape[0], nt_samples_partition
        noise = torch.empty((n_img * k, *input.shape[1:]), dtype=input.dtype)
        _fill_noise(noise, [i for i in range(n_img) for _ in range(k)],
                    [state["offset"] + s for _ in range(n_img) for s in range(k)], seed, False)
        state["offset"] += k
        return input.repeat_interleave(k, dim=0) + stdev * noise

    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input", staticmethod(add_noise_to_input))
    return state


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_agrees_with_captum_noise_tunnel_given_the_same_noise(monkeypatch, variant):
    captum_attr = pytest.importorskip("captum.attr")
    model = small_cnn()
    x0 = images(1)[0]
    x = torch.stack([x0, 0.3 - x0.flip(-1)])  # same range, so one absolute stdev fits both
    sigma = noise_sigma(x, 0.2)
    assert torch.allclose(sigma[0], sigma[1])
    state = _patched_captum_noise(monkeypatch, seed=4)
    nt = captum_attr.NoiseTunnel(captum_attr.Saliency(model))
    theirs = nt.attribute(x, nt_type=variant, nt_samples=10, nt_samples_batch_size=4,
                          stdevs=float(sigma[0]), target=[1, 3], abs=False)
    assert state["offset"] == 10
    ours = smoothgrad(model, x, [1, 3], n_samples=10, noise_level=0.2, variant=variant, seed=4, batch_size=4)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_agrees_with_captum_statistically():
    captum_attr = pytest.importorskip("captum.attr")
    model, x = small_cnn(), images(1)
    n = 3000
    sigma = float(noise_sigma(x, 0.15)[0])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=1000, stdevs=sigma, target=2, abs=False)
    ours = smoothgrad(model, x, 2, n_samples=n, noise_level=0.15, seed=0, batch_size=1000)
    var = smoothgrad(model, x, 2, n_samples=n, noise_level=0.15, seed=1, batch_size=1000, variant="vargrad")
    z = (ours - theirs) / torch.sqrt(2 * var / n + 1e-20)
    assert z.abs().max() < 5, z.abs().max()
    # and the comparison has power: vanilla gradient is many standard errors away
    assert ((gradient(model, x, 2) - theirs) / torch.sqrt(var / n + 1e-20)).abs().max() > 10


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(n_samples=0), "n_samples.*0"),
        (dict(n_samples=-3), "n_samples.*-3"),
        (dict(n_samples=2.5), "n_samples.*2.5"),
        (dict(n_samples=True), "n_samples.*True"),
        (dict(noise_level=-0.1), "noise_level.*-0.1"),
        (dict(noise_level=float("nan")), "noise_level.*nan"),
        (dict(noise_level="0.1"), "noise_level.*'0.1'"),
        (dict(variant="smoothgrad2"), "variant.*smoothgrad2"),
        (dict(variant=None), "variant.*None"),
        (dict(batch_size=0), "batch_size.*0"),
        (dict(seed=-1), "seed.*-1"),
        (dict(seed=1.5), "seed.*1.5"),
        (dict(antithetic="yes"), "antithetic.*yes"),
        (dict(target=5), r"target.*\[0, 5\).*\[5\]"),
        (dict(target=-1), "target.*-1"),
        (dict(target=[1]), "target.*2"),
        (dict(target=[1, 2, 3]), "target.*3"),
        (dict(target=[1.0, 2.0]), "target.*float"),
        (dict(target="cat"), "target.*cat"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, pattern):
    model, x = small_cnn(), images()
    fp = model_fingerprint(model)
    args = dict(target=1, n_samples=2, seed=0)
    args.update(kwargs)
    target = args.pop("target")
    expected = TypeError if "antithetic" in kwargs else ValueError  # a flag of the wrong type is a TypeError
    with pytest.raises(expected, match=pattern):
        smoothgrad(model, x, target, **args)
    assert model_fingerprint(model) == fp


@pytest.mark.parametrize("fn", [gradient, gradient_x_input, smoothgrad])
def test_bad_inputs_raise_value_error(fn):
    model = small_cnn()
    with pytest.raises(ValueError, match=r"inputs.*4-D.*\(3, 8, 8\)"):
        fn(model, images()[0], 1)
    nan = images()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs.*NaN"):
        fn(model, nan, 1)
    inf = images()
    inf[1, 2, 3, 4] = float("inf")
    with pytest.raises(ValueError, match="inputs.*inf"):
        fn(model, inf, 1)
    with pytest.raises(ValueError, match="inputs.*int64"):
        fn(model, torch.zeros(1, 3, 8, 8, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="target"):
        fn(model, images(), [1, 2, 3])
    with pytest.raises(TypeError, match="model"):
        fn("resnet", images(), 1)
    with pytest.raises(TypeError, match="inputs"):
        fn(model, np.zeros((1, 3, 8, 8), dtype=np.float32), 1)


def test_model_with_wrong_output_shape_is_reported():
    model = nn.Sequential(nn.Conv2d(3, 2, 3))  # returns a 4-D map, not logits
    fp = model_fingerprint(model)
    with pytest.raises(ValueError, match=r"model.*\(N, K\) logits"):
        smoothgrad(model, images(), 1, n_samples=2, seed=0)
    assert model_fingerprint(model) == fp


def test_add_noise_bad_arguments():
    with pytest.raises(ValueError, match="noise_level"):
        add_noise(images(), -1.0)
    with pytest.raises(ValueError, match="sample_index"):
        add_noise(images(), 0.1, sample_index=-1)


def test_noise_of_sample_j_is_drawn_from_its_own_stream():
    buf = torch.empty(3, 2, 4, 4)
    _fill_noise(buf, [0, 1, 1], [5, 0, 7], seed=3, antithetic=False)
    for k, (i, j) in enumerate([(0, 5), (1, 0), (1, 7)]):
        alone = _rng.normal_(torch.empty(1, 32), torch.tensor([_rng.stream_key(3, i, j)]))
        assert torch.equal(buf[k].flatten(), alone[0])


def test_noise_streams_are_distinct():
    # guards the assumption behind batch-size independence: (seed, i, j) streams differ
    keys = torch.tensor([_rng.stream_key(0, 0, 1), _rng.stream_key(0, 1, 0), _rng.stream_key(1, 0, 0)])
    a = _rng.normal_(torch.empty(3, 100), keys)
    assert not torch.allclose(a[0], a[1]) and not torch.allclose(a[0], a[2])


def test_smoothgrad_equals_a_loop_over_add_noise_for_a_real_network():
    # the notebook's from-scratch SmoothGrad: same noisy copies, same gradients, same mean
    model, x = small_cnn(), images(2)
    n, level = 5, 0.2
    total = torch.zeros_like(x)
    for j in range(n):
        noisy = add_noise(x, level, seed=7, sample_index=j).requires_grad_(True)
        model(noisy).gather(1, torch.tensor([[1], [3]])).sum().backward()
        total += noisy.grad
    torch.testing.assert_close(smoothgrad(model, x, [1, 3], n_samples=n, noise_level=level, seed=7, batch_size=3),
                               total / n, rtol=1e-5, atol=1e-7)


def test_noise_is_bit_identical_across_batch_sizes():
    # the noisy copies themselves (not just the maps) do not depend on the chunking
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen.setdefault(self.bs, []).append(x.detach().clone())
            return x.flatten(1)[:, :5] * 1.0

    x = images(2)
    for bs in (1, 3, 10):
        spy = Spy()
        spy.bs = bs
        smoothgrad(spy, x, 1, n_samples=5, seed=4, batch_size=bs, antithetic=True)
    ref = torch.cat(seen[1])
    assert ref.shape[0] == 10
    for bs in (3, 10):
        assert torch.equal(torch.cat(seen[bs]), ref)


# --------------------------------------------------------------------------- CUDA (skipped without a GPU)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_batch_size_independence_and_model_state():
    model, x = small_cnn().cuda(), images(3).cuda()
    fp = model_fingerprint(model)
    kw = dict(n_samples=9, noise_level=0.2, seed=11, variant="vargrad")
    ref = smoothgrad(model, x, [0, 3, 4], batch_size=1, **kw)
    assert ref.device.type == "cuda" and torch.isfinite(ref).all()
    for bs in (4, 27):
        torch.testing.assert_close(smoothgrad(model, x, [0, 3, 4], batch_size=bs, **kw), ref, rtol=1e-4, atol=1e-6)
    assert model_fingerprint(model) == fp


@cuda
def test_cuda_agrees_with_cpu_statistically():
    model, x = small_cnn(), images(1)
    n = 3000
    cpu = smoothgrad(model, x, 2, n_samples=n, seed=0, batch_size=1000)
    var = smoothgrad(model, x, 2, n_samples=n, seed=1, batch_size=1000, variant="vargrad")
    gpu = smoothgrad(model.cuda(), x.cuda(), 2, n_samples=n, seed=0, batch_size=1000).cpu()
    z = (gpu - cpu) / torch.sqrt(2 * var / n + 1e-20)
    assert z.abs().max() < 5, z.abs().max()


@cuda
def test_cuda_noise_is_bit_identical_to_cpu():
    # the counter-based noise uses integer operations, table look-ups and one multiply-add in
    # separate kernels: the noisy copies are the same bit for bit on both devices
    x = images(3, size=32)
    for anti in (False, True):
        for j in (0, 1, 6):
            cpu = add_noise(x, 0.2, seed=9, sample_index=j, antithetic=anti)
            gpu = add_noise(x.cuda(), 0.2, seed=9, sample_index=j, antithetic=anti).cpu()
            assert torch.equal(cpu, gpu), (anti, j, (cpu - gpu).abs().max())


@cuda
def test_cuda_smoothgrad_matches_cpu_given_the_same_noise():
    model, x = small_cnn().double(), images(2).double()
    kw = dict(n_samples=8, noise_level=0.2, seed=3, batch_size=5)
    cpu = smoothgrad(model, x, [1, 2], **kw)
    gpu = smoothgrad(model.cuda(), x.cuda(), [1, 2], **kw).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-9, atol=1e-12)
