"""Tests for interp_helpers.methods: known answers, Captum and shap cross-checks, noise and seeds, batching,
the model left as found, the device policy and bad inputs.

The analytic model is f(x) = sum(w * x^2 / 2), whose input gradient is w * x. With x + eps,
eps ~ N(0, sigma^2 I): E[grad] = w x, E[grad^2] = w^2 (x^2 + sigma^2), Var[grad] = w^2 sigma^2.
Monte Carlo estimates are compared with these in units of their standard error.
"""
from __future__ import annotations

import functools
import inspect
import random
import types

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers import methods
from interp_helpers._common import BATCH_PIXELS, DEFAULT_SEED, torch_generator
from interp_helpers.methods import (
    ExpectedGradientsCheck,
    add_noise,
    expected_gradients,
    expected_gradients_check,
    gradient,
    gradient_x_input,
    layer_activations,
    noise_tunnel,
    shap_gradient_explainer,
    smoothgrad,
    smoothgrad_convergence,
)

VARIANTS = ["smoothgrad", "smoothgrad_sq", "vargrad"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# --------------------------------------------------------------------------- models, data, model state


class Quadratic(nn.Module):
    """logits[:, 0] = sum(w * x^2 / 2) (gradient w * x); logits[:, 1] = sum(x) (gradient 1)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([(self.w * x.square() / 2).flatten(1).sum(1), x.flatten(1).sum(1)], dim=1)


class Net(nn.Module):
    """A ReLU CNN on (3, 12, 12) images, 3 classes, named stages; ``extras`` adds BatchNorm and Dropout."""

    def __init__(self, extras: bool = False, inplace: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6) if extras else nn.Identity()
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU(inplace=inplace)  # in place right after conv2, an attributed layer
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.5) if extras else nn.Identity()
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.bn(self.conv1(x)))))
        return self.fc(self.drop(self.pool(x).flatten(1)))


def net(dtype: torch.dtype = torch.float32, seed: int = 0, **kwargs) -> Net:
    """He-initialised (logit gaps of order 1) from its own generator, in eval mode."""
    model, g = Net(**kwargs), torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = (2 / p[0].numel()) ** 0.5 if p.dim() > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * (4 * std if p.dim() == 2 else std))
    return model.to(dtype).eval()


def data(n: int = 2, m: int = 4, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (3, 12, 12) and a background of m images closer to 0."""
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(n, 3, 12, 12, generator=g, dtype=dtype)
    return x, 0.3 * torch.randn(m, 3, 12, 12, generator=g, dtype=dtype)


class Residual(nn.Module):
    """conv2 is bypassed by a skip connection: it does not separate the network (conv1 does)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        return self.fc((torch.relu(self.conv2(h)) + h).mean(dim=(2, 3)))


class Shared(nn.Module):
    """One ReLU module called twice per forward pass, and a module never called."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.unused = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.relu(self.conv(x)) - 0.1).mean(dim=(2, 3)))


class Recorder(nn.Module):
    """Wraps a model: records each call's batch size, training flags and requires_grad; raises on call ``fail_at``."""

    def __init__(self, inner: nn.Module, fail_at: int | None = None, error: type = RuntimeError) -> None:
        super().__init__()
        self.inner, self.fail_at, self.error = inner, fail_at, error
        self.batches: list[int] = []
        self.training_seen: list[bool] = []
        self.requires_grad_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        self.training_seen.append(any(m.training for m in self.modules()))
        self.requires_grad_seen.append(any(p.requires_grad for p in self.parameters()))
        if len(self.batches) == self.fail_at:
            raise self.error("boom")
        return self.inner(x)


HOOKS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
         "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")


def fingerprint(model: nn.Module) -> dict:
    """Everything a helper must leave unchanged: modes, hooks, attributes, requires_grad, .grad, values."""
    named = list(model.named_modules())
    return {
        "training": [(n, m.training) for n, m in named],
        "hooks": [(n, h, list(getattr(m, h))) for n, m in named for h in HOOKS if hasattr(m, h)],
        "attributes": [(n, sorted(vars(m))) for n, m in named],  # e.g. shap's layer.target_input
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grad": [(n, None if p.grad is None else (id(p.grad), float(p.grad.double().sum())))
                 for n, p in model.named_parameters()],
        "values": [(n, float(t.detach().double().sum())) for n, t in [*model.named_parameters(),
                                                                       *model.named_buffers()]],
    }


def dirty(model: nn.Module) -> nn.Module:
    """Train mode, mixed requires_grad, an existing .grad and a user's hook: all must survive."""
    model.train()
    model.conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.relu1.register_forward_hook(lambda *args: None)
    return model


def test_fingerprint_sees_every_change() -> None:
    """The helper the state tests rely on: it must notice each kind of change."""
    model = net()
    before = fingerprint(model)
    changes = [lambda: model.train(), lambda: model.fc.weight.requires_grad_(False),
               lambda: setattr(model.fc.weight, "grad", torch.zeros_like(model.fc.weight)),
               lambda: model.conv2.register_forward_pre_hook(lambda *a: None),
               lambda: setattr(model.conv2, "target_input", 1),
               lambda: model.fc.bias.data.add_(1.0)]
    for change in changes:
        model = net()
        change()
        assert fingerprint(model) != before


@pytest.fixture()
def quad():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64) * 2 + 0.5
    x = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    x[1] *= 3.0  # another range, hence another sigma
    return Quadratic(w), w, x


def sigma(x: torch.Tensor, level: float) -> torch.Tensor:
    """The SmoothGrad paper's noise: level * (max - min) of each image, shaped (N, 1, 1, 1)."""
    flat = x.flatten(1)
    return (level * (flat.amax(1) - flat.amin(1))).view(-1, 1, 1, 1)


# --------------------------------------------------------------------------- gradient, gradient x input, targets


def test_gradient_and_gradient_x_input_known_answers(quad) -> None:
    model, w, x = quad
    torch.testing.assert_close(gradient(model, x, 0), w * x)
    torch.testing.assert_close(gradient_x_input(model, x, 0), w * x * x)
    torch.testing.assert_close(gradient(model, x, 1), torch.ones_like(x))
    torch.testing.assert_close(gradient(model, x, [0, 1]), torch.stack([w[0] * x[0], torch.ones_like(x[1])]))
    out = gradient(model, x, 0)
    assert out.dtype == x.dtype and not out.requires_grad


def test_callable_target_equals_index_and_a_logit_difference_is_linear() -> None:
    model, (x, _) = net(), data(3)
    g1 = gradient(model, x, 1)
    torch.testing.assert_close(gradient(model, x, lambda z: z[:, 1]), g1)
    torch.testing.assert_close(gradient(model, x, torch.tensor([1, 1, 1])), g1)
    torch.testing.assert_close(gradient(model, x, np.array([1, 1, 1])), g1)
    diff = gradient(model, x, lambda z: z[:, 1] - z[:, 2])
    torch.testing.assert_close(diff, g1 - gradient(model, x, 2), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(diff, g1)
    # a score that does not depend on the input has gradient 0
    assert torch.equal(gradient(model, x, lambda z: torch.zeros(z.shape[0])), torch.zeros_like(x))


def test_gradient_does_not_depend_on_batch_size_and_works_inside_no_grad() -> None:
    model, (x, _) = net(), data(3)
    ref = gradient(model, x, [0, 1, 2])
    torch.testing.assert_close(gradient(model, x, [0, 1, 2], batch_size=1), ref, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        torch.testing.assert_close(gradient(model, x, [0, 1, 2]), ref)
        torch.testing.assert_close(smoothgrad(model, x, 1, n_samples=2), smoothgrad(model, x, 1, n_samples=2))


def test_loaded_model_like_object_and_its_num_classes() -> None:
    model, (x, _) = net(), data()
    loaded = types.SimpleNamespace(module=model, num_classes=2)  # what load_model returns: .module, .num_classes
    torch.testing.assert_close(gradient(loaded, x, 1), gradient(model, x, 1))
    torch.testing.assert_close(smoothgrad(loaded, x, 1, n_samples=2), smoothgrad(model, x, 1, n_samples=2))
    with pytest.raises(ValueError, match=r"target out of range \[0, 2\)"):  # checked before any forward pass
        gradient(loaded, x, 2)


# --------------------------------------------------------------------------- the noise


def test_add_noise_draws_copy_i_j_from_the_generator_seeded_by_seed_i_j() -> None:
    """Known answer: image i, sample j gets sigma_i * randn from torch_generator(seed, i, j)."""
    x, _ = data(3)
    s = sigma(x, 0.2)
    for j in (0, 4):
        noisy = add_noise(x, 0.2, seed=9, sample_index=j)
        for i in range(3):
            eps = torch.randn(x.shape[1:], generator=torch_generator(9, i, j))
            torch.testing.assert_close(noisy[i], x[i] + s[i] * eps, rtol=0, atol=1e-6)
    assert torch.equal(add_noise(x, 0.2, seed=9), add_noise(x, 0.2, seed=9, sample_index=0))
    assert torch.equal(add_noise(x, 0.2), add_noise(x, 0.2, seed=DEFAULT_SEED))  # the one default seed
    assert not torch.allclose(add_noise(x, 0.2, seed=9), add_noise(x, 0.2, seed=10))
    assert torch.equal(add_noise(x, 0.0, seed=9), x)


def test_add_noise_has_the_requested_per_image_sigma() -> None:
    big = torch.zeros(2, 3, 64, 64, dtype=torch.float64)
    big[:, :, 0, 0] = torch.tensor([1.0, 4.0]).view(2, 1)  # ranges 1 and 4
    eps = add_noise(big, 0.1, seed=1) - big
    torch.testing.assert_close(eps.flatten(1).std(1), torch.tensor([0.1, 0.4], dtype=torch.float64), rtol=0.03, atol=0)
    assert add_noise(big, 0.1).dtype == torch.float64


def test_antithetic_pairs_are_opposite() -> None:
    x, _ = data()
    eps = [add_noise(x, 0.2, seed=3, sample_index=j, antithetic=True) - x for j in range(4)]
    torch.testing.assert_close(eps[1], -eps[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(eps[3], -eps[2], rtol=0, atol=1e-6)
    assert not torch.allclose(eps[0], eps[2], atol=1e-3)
    assert torch.equal(eps[0] + x, add_noise(x, 0.2, seed=3))  # the first of a pair is the i.i.d. sample 0
    assert not torch.allclose(add_noise(x, 0.2, seed=3, sample_index=1) - x, -eps[0], atol=1e-3)


def test_add_noise_is_exactly_the_copy_noise_tunnel_evaluates(quad) -> None:
    # f has gradient w * x: a run's SmoothGrad is w * (the mean of the noisy copies)
    model, w, x = quad
    for anti in (False, True):
        noisy = torch.stack([add_noise(x, 0.3, seed=5, sample_index=j, antithetic=anti) for j in range(3)])
        sg = smoothgrad(model, x, 0, n_samples=3, noise_level=0.3, seed=5, antithetic=anti)
        torch.testing.assert_close(sg, w * noisy.mean(0), rtol=1e-12, atol=1e-12)
    # and bit for bit: a spy sees exactly add_noise's copies, image-major, whatever the batch size
    seen: dict[int, list[torch.Tensor]] = {}

    class Spy(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            seen.setdefault(self.bs, []).append(z.detach().clone())
            return z.flatten(1)[:, :3] * 1.0

    xs, _ = data(3)
    for bs in (1, 7, 50):
        spy = Spy()
        spy.bs = bs
        smoothgrad(spy, xs, 1, n_samples=20, seed=4, batch_size=bs)
        copies = torch.cat(seen[bs])
        assert copies.shape[0] == 60 and max(len(c) for c in seen[bs]) <= bs
        expected = torch.stack([add_noise(xs, 0.15, seed=4, sample_index=j) for j in range(20)], 1).flatten(0, 1)
        assert torch.equal(copies, expected), bs


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("antithetic", [False, True])
def test_maps_do_not_depend_on_batch_size(variant: str, antithetic: bool) -> None:
    """Batch sizes 1, 7 and 50 with the same seed: the same noise, the same maps up to float rounding."""
    model, (x, _) = net(), data(3)
    kw = {"n_samples": 20, "noise_level": 0.2, "variant": variant, "seed": 11, "antithetic": antithetic}
    ref = smoothgrad(model, x, [0, 1, 2], batch_size=1, **kw)
    for bs in (7, 50, None):
        torch.testing.assert_close(smoothgrad(model, x, [0, 1, 2], batch_size=bs, **kw), ref, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(smoothgrad(model, x, [0, 1, 2], batch_size=7, **{**kw, "seed": 12}), ref)


def test_image_i_uses_streams_seed_i_j_whatever_the_other_images() -> None:
    model, (x, _) = net(), data(3)
    together = smoothgrad(model, x, [0, 1, 2], n_samples=6, seed=2, batch_size=5)
    alone = smoothgrad(model, x[:1], 0, n_samples=6, seed=2, batch_size=4)  # image 0 either way
    torch.testing.assert_close(together[:1], alone, rtol=1e-4, atol=1e-6)


def test_seeds() -> None:
    model, (x, _) = net(), data()
    a = smoothgrad(model, x, 1, n_samples=4, seed=0)
    assert torch.equal(a, smoothgrad(model, x, 1, n_samples=4, seed=0))
    assert not torch.allclose(a, smoothgrad(model, x, 1, n_samples=4, seed=1))
    assert torch.equal(smoothgrad(model, x, 1, n_samples=4), smoothgrad(model, x, 1, n_samples=4, seed=DEFAULT_SEED))
    assert not torch.allclose(smoothgrad(model, x, 1, n_samples=4, seed=None),
                              smoothgrad(model, x, 1, n_samples=4, seed=None))  # fresh OS entropy
    assert torch.equal(smoothgrad(model, x, 1, n_samples=4, seed=2**63 - 1),
                       smoothgrad(model, x, 1, n_samples=4, seed=2**63 - 1))


def test_global_rngs_untouched() -> None:
    model, (x, bg) = net(), data()
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    smoothgrad(model, x, 1, n_samples=3, seed=0)
    smoothgrad(model, x, 1, n_samples=3, seed=None, antithetic=True, variant="vargrad")
    smoothgrad_convergence(model, x, 1, counts=[1, 2], seed=None)
    noise_tunnel(functools.partial(gradient), model, x, 1, n_samples=2, seed=None)
    add_noise(x, 0.1, seed=None)
    gradient(model, x, 1)
    layer_activations(model, x, layer=model.conv2)
    expected_gradients(model, x, 0, background=bg, n_samples=3, seed=None)
    expected_gradients_check(model, x, 0, background=bg, layer=model.conv2, n_samples=3, seed=None)
    shap_gradient_explainer(model, x, 0, background=bg, n_samples=3, seed=None)
    assert torch.equal(torch_state, torch.get_rng_state())
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert py_state == random.getstate()


# --------------------------------------------------------------------------- the variants


@pytest.mark.parametrize("antithetic", [False, True])
def test_variants_match_their_expectations_at_large_n(quad, antithetic: bool) -> None:
    model, w, x = quad
    n, level = 8000, 0.2
    s = sigma(x, level)
    kw = {"n_samples": n, "noise_level": level, "batch_size": 4000, "seed": 3, "antithetic": antithetic}
    sg, sq, vg = (smoothgrad(model, x, 0, variant=v, **kw) for v in VARIANTS)
    e_sq, e_var = w**2 * (x**2 + s**2), w**2 * s**2
    if antithetic:  # eps and -eps cancel exactly in the mean of a linear gradient
        torch.testing.assert_close(sg, w * x, rtol=0, atol=1e-12)
        n //= 2  # the pairs' squares are equal: n / 2 independent draws
    else:
        z_mean = (sg - w * x) / (w.abs() * s / n**0.5)
        assert z_mean.abs().max() < 4.5, z_mean.abs().max()
        assert z_mean.abs().max() > 0.1  # Monte Carlo error is there (not the exact answer by accident)
    z_sq = (sq - e_sq) / (w**2 * torch.sqrt(4 * x**2 * s**2 + 2 * s**4) / n**0.5)
    assert z_sq.abs().max() < 4.5, z_sq.abs().max()
    z_var = (vg - e_var) / (e_var * (2 / n) ** 0.5)
    assert z_var.abs().max() < 4.5, z_var.abs().max()
    assert (vg - e_var).abs().max() > 0  # and it is an estimate


def test_vargrad_is_stable_when_the_mean_dominates() -> None:
    # gradient 1e4 + w * x: E[g^2] - E[g]^2 summed in float32 would lose everything to cancellation
    class Shifted(nn.Module):
        def __init__(self, w: torch.Tensor) -> None:
            super().__init__()
            self.w = nn.Parameter(w)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (1e4 * x + self.w * x.square() / 2).flatten(1).sum(1, keepdim=True)

    g = torch.Generator().manual_seed(0)
    w, x = torch.rand(1, 1, 4, 4, generator=g) + 0.5, torch.randn(1, 1, 4, 4, generator=g)
    n = 2000
    vg = smoothgrad(Shifted(w), x, 0, n_samples=n, noise_level=0.2, variant="vargrad", batch_size=64)
    expected = w**2 * sigma(x, 0.2) ** 2
    z = (vg - expected) / (expected * (2 / n) ** 0.5)
    assert z.abs().max() < 5, z.abs().max()


def test_constant_gradient_has_zero_variance_and_zero_noise_gives_the_gradient(quad) -> None:
    model, _, x = quad
    torch.testing.assert_close(smoothgrad(model, x, 1, n_samples=7), torch.ones_like(x))
    torch.testing.assert_close(smoothgrad(model, x, 1, n_samples=7, variant="vargrad"), torch.zeros_like(x),
                               rtol=0, atol=1e-12)
    cnn, (xs, _) = net(), data()
    g = gradient(cnn, xs, [1, 2])
    kw = {"n_samples": 3, "noise_level": 0.0}
    torch.testing.assert_close(smoothgrad(cnn, xs, [1, 2], **kw), g)
    torch.testing.assert_close(smoothgrad(cnn, xs, [1, 2], variant="smoothgrad_sq", **kw), g**2)
    assert smoothgrad(cnn, xs, [1, 2], variant="vargrad", **kw).abs().max() < 1e-10


# --------------------------------------------------------------------------- noise_tunnel over any method


def test_noise_tunnel_over_gradient_is_smoothgrad_exactly() -> None:
    model, (x, _) = net(), data(3)
    kw = {"n_samples": 6, "noise_level": 0.2, "seed": 3, "batch_size": 4}
    assert torch.equal(noise_tunnel(gradient, model, x, [0, 1, 2], **kw), smoothgrad(model, x, [0, 1, 2], **kw))


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_per_sample_path_agrees_with_the_batched_path(variant: str) -> None:
    """A partial of gradient is not known to be row-wise: it is called once per sample; same noise, same result."""
    model, (x, _) = net(), data(3)
    kw = {"n_samples": 5, "noise_level": 0.15, "seed": 11, "variant": variant}
    batched = noise_tunnel(gradient, model, x, 2, batch_size=3, **kw)
    per_sample = noise_tunnel(functools.partial(gradient, batch_size=2), model, x, 2, **kw)
    torch.testing.assert_close(per_sample, batched, rtol=1e-5, atol=1e-7)


def test_noise_tunnel_of_gradient_x_input_is_the_mean_over_the_noisy_copies() -> None:
    model, (x, _) = net(), data()
    expected = torch.zeros_like(x)
    for j in range(4):
        noisy = add_noise(x, 0.1, seed=5, sample_index=j)
        expected += gradient(model, noisy, [1, 2]) * noisy / 4
    got = noise_tunnel(gradient_x_input, model, x, [1, 2], n_samples=4, noise_level=0.1, seed=5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_smoothgrad_equals_the_notebooks_loop_over_add_noise() -> None:
    model, (x, _) = net(), data()
    total = torch.zeros_like(x)
    for j in range(5):
        noisy = add_noise(x, 0.2, seed=7, sample_index=j).requires_grad_(True)
        model(noisy).gather(1, torch.tensor([[1], [2]])).sum().backward()
        total += noisy.grad
    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(smoothgrad(model, x, [1, 2], n_samples=5, noise_level=0.2, seed=7, batch_size=3),
                               total / 5, rtol=1e-5, atol=1e-7)


def test_noise_tunnel_over_a_user_method_with_another_output_shape() -> None:
    seen = []

    def channel_gradient(model, inputs, target):
        seen.append(target)
        return gradient(model, inputs, target).sum(dim=(2, 3))  # (N, C)

    model, (x, _) = net(), data(3)
    out = noise_tunnel(channel_gradient, model, x, 1, n_samples=3)
    assert out.shape == (3, 3) and len(seen) == 3
    assert all(torch.equal(torch.as_tensor(t), torch.ones(3, dtype=torch.long)) for t in seen)
    torch.testing.assert_close(out, smoothgrad(model, x, 1, n_samples=3).sum(dim=(2, 3)), rtol=1e-5, atol=1e-6)
    fn = lambda z: z[:, 0] - z[:, 1]
    noise_tunnel(channel_gradient, model, x, fn, n_samples=1)
    assert seen[-1] is fn  # a callable target is passed on as it is


def test_a_wrapper_of_a_rowwise_method_is_called_as_written() -> None:
    """functools.wraps copies a function's attributes: the batched path must not replace the wrapper by gradient."""
    calls = []

    @functools.wraps(gradient)
    def abs_gradient(model, inputs, target):
        calls.append(inputs.shape[0])
        return gradient(model, inputs, target).abs()

    model, (x, _) = net(), data(3)
    out = noise_tunnel(abs_gradient, model, x, 1, n_samples=3, seed=2)
    assert calls == [3, 3, 3] and float(out.min()) >= 0
    expected = sum(gradient(model, add_noise(x, 0.15, seed=2, sample_index=j), 1).abs() for j in range(3)) / 3
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("target", [1, [0, 2], lambda z: z[:, 0] - z[:, 1]])
def test_noise_tunnel_smooths_expected_gradients(target) -> None:
    model, (x, bg) = net(torch.float64), data(dtype=torch.float64)
    method = functools.partial(expected_gradients, background=bg, n_samples=8, seed=4)
    smoothed = noise_tunnel(method, model, x, target, n_samples=3, noise_level=0.1, seed=7)
    expected = torch.stack([method(model, add_noise(x, 0.1, seed=7, sample_index=j), target) for j in range(3)])
    torch.testing.assert_close(smoothed, expected.mean(0), rtol=1e-10, atol=1e-12)
    assert not torch.allclose(smoothed, method(model, x, target))
    layer_method = functools.partial(expected_gradients, background=bg, layer=model.conv2, n_samples=4)
    assert noise_tunnel(layer_method, model, x, target, n_samples=2).shape == (2, 8, 6, 6)


# --------------------------------------------------------------------------- smoothgrad_convergence


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("antithetic", [False, True])
def test_convergence_entry_k_is_smoothgrad_at_counts_k(variant: str, antithetic: bool) -> None:
    rec = Recorder(net())
    x, _ = data()
    kw = {"noise_level": 0.2, "variant": variant, "seed": 7, "antithetic": antithetic, "batch_size": 3}
    path = smoothgrad_convergence(rec, x, [1, 2], counts=[1, 2, 5, 8], **kw)
    assert sum(rec.batches) == 2 * 8  # one run of max(counts) samples
    assert isinstance(path, list) and len(path) == 4
    for n, est in zip([1, 2, 5, 8], path):
        torch.testing.assert_close(est, smoothgrad(rec, x, [1, 2], n_samples=n, **kw), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(path[0], path[-1])


# --------------------------------------------------------------------------- Captum


def _captum_draws_our_noise(monkeypatch, seed: int) -> dict:
    """Make Captum's NoiseTunnel add, for image i and sample j, sigma * randn from torch_generator(seed, i, j)."""
    from captum.attr import NoiseTunnel

    drawn = {"samples": 0}

    def add_noise_to_input(input, stdev, nt_samples_partition):
        k, start = nt_samples_partition, drawn["samples"]
        noise = torch.stack([torch.randn(input.shape[1:], generator=torch_generator(seed, i, start + s),
                                         dtype=input.dtype) for i in range(input.shape[0]) for s in range(k)])
        drawn["samples"] += k
        return input.repeat_interleave(k, dim=0) + stdev * noise

    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input", staticmethod(add_noise_to_input))
    return drawn


@pytest.mark.parametrize("variant", VARIANTS)
def test_agrees_with_captum_noise_tunnel_given_the_same_noise(monkeypatch, variant: str) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    model, (x, _) = net(), data(1)
    x = torch.cat([x, 0.3 - x.flip(-1)])  # the same range: one absolute stdev fits both images
    s = sigma(x, 0.2).flatten()
    assert s[0] == s[1]
    drawn = _captum_draws_our_noise(monkeypatch, seed=4)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        x, nt_type=variant, nt_samples=10, nt_samples_batch_size=4, stdevs=float(s[0]), target=[1, 2], abs=False)
    assert drawn["samples"] == 10
    ours = smoothgrad(model, x, [1, 2], n_samples=10, noise_level=0.2, variant=variant, seed=4, batch_size=4)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(ours, smoothgrad(model, x, [1, 2], n_samples=10, noise_level=0.2, variant=variant,
                                               seed=5), rtol=1e-4, atol=1e-6)


def test_agrees_with_captum_statistically() -> None:
    captum_attr = pytest.importorskip("captum.attr")
    model, (x, _) = net(), data(1)
    n = 3000
    s = float(sigma(x, 0.15))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=1000, stdevs=s, target=2, abs=False)
    ours = smoothgrad(model, x, 2, n_samples=n, noise_level=0.15, batch_size=1000)
    var = smoothgrad(model, x, 2, n_samples=n, noise_level=0.15, seed=1, batch_size=1000, variant="vargrad")
    z = (ours - theirs) / torch.sqrt(2 * var / n + 1e-20)
    assert z.abs().max() < 5, z.abs().max()
    # the comparison has power: the plain gradient is many standard errors away
    assert ((gradient(model, x, 2) - theirs) / torch.sqrt(var / n + 1e-20)).abs().max() > 10


# --------------------------------------------------------------------------- layer_activations


def test_layer_activations_match_a_manual_forward_and_leave_the_model_as_found() -> None:
    model = dirty(net(extras=True))  # in train mode, BatchNorm would use batch statistics and update its buffers
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
    x, _ = data(5)
    before = fingerprint(model)
    acts = layer_activations(model, x, layer=model.conv2, batch_size=2)
    assert fingerprint(model) == before
    model.eval()
    with torch.no_grad():
        expected = model.conv2(model.relu1(model.bn(model.conv1(x))))
    model.train()
    assert acts.shape == (5, 8, 6, 6) and acts.device == x.device and not acts.requires_grad
    torch.testing.assert_close(acts, expected)
    torch.testing.assert_close(layer_activations(model, x, layer=model.conv1), model.conv1(x).detach())
    assert fingerprint(model) == before


def test_layer_activations_are_not_overwritten_by_an_in_place_op_after_the_layer() -> None:
    model, (x, _) = net(inplace=True), data()
    with torch.no_grad():
        expected = model.conv2(model.relu1(model.conv1(x)))
    assert expected.min() < 0
    torch.testing.assert_close(layer_activations(model, x, layer=model.conv2), expected)


def test_layer_called_twice_never_or_returning_a_tuple_is_refused_and_no_hook_is_left() -> None:
    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.split, self.fc = nn.Conv2d(3, 4, 1), nn.Identity(), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.split((self.conv(x), x))
            return self.fc(h.mean(dim=(2, 3)))

    x, _ = data()
    for model, layer, match in [(Shared(), "relu", "called 2 times"), (Shared(), "unused", "called 0 times"),
                                (Split(), "split", "single tensor")]:
        model.train()
        model.conv.register_forward_hook(lambda *args: None)  # someone else's hook stays
        before = fingerprint(model)
        with pytest.raises(ValueError, match=match):
            layer_activations(model, x, layer=getattr(model, layer))
        assert fingerprint(model) == before


def test_layer_activations_of_a_model_whose_output_is_not_a_tensor() -> None:
    class Segmenter(nn.Module):  # like torchvision's segmentation models: a dict of outputs
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> dict:
            return {"out": self.conv(x)}

    model, (x, _) = Segmenter(), data()
    torch.testing.assert_close(layer_activations(model, x, layer=model.conv), model.conv(x).detach())


# --------------------------------------------------------------------------- expected gradients: known answers


def _sums(a: torch.Tensor) -> torch.Tensor:
    return a.detach().double().flatten(1).sum(1)


def test_linear_model_single_background_is_exact() -> None:
    """f(x) = w . vec(x) + b: every draw gives w * (x - x'), so phi sums to f(x) - f(x'), at the input and a layer."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 4)).double().eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 3, 5, 5, generator=g, dtype=torch.float64)
    bg = torch.randn(1, 3, 5, 5, generator=g, dtype=torch.float64)
    target, w = [0, 2, 3], model[1].weight.detach()
    phi = expected_gradients(model, x, target, background=bg, n_samples=7, batch_size=4)
    expected = w[target].view(3, 3, 5, 5) * (x - bg)
    assert phi.shape == x.shape and phi.dtype == x.dtype
    torch.testing.assert_close(phi, expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        gap = model(x)[range(3), target] - model(bg)[0, target]
    torch.testing.assert_close(_sums(phi), gap, rtol=1e-12, atol=1e-12)
    check = expected_gradients_check(model, x, target, background=bg, n_samples=5)
    torch.testing.assert_close(check.gap, gap, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(check.draw_sums, gap.view(3, 1).expand(3, 5), rtol=1e-12, atol=1e-12)
    assert float(check.standard_error.max()) < 1e-12
    # layer form: the Flatten's output is vec(x); attributions w * (vec(x) - vec(x'))
    phi_layer = expected_gradients(model, x, target, background=bg, layer=model[0], n_samples=5, seed=1)
    torch.testing.assert_close(phi_layer, expected.flatten(1), rtol=1e-12, atol=1e-12)
    # a weighted sum of logits as the target: phi = (w1 - w0 / 2) * (x - x')
    phi_fn = expected_gradients(model, x, lambda z: z[:, 1] - 0.5 * z[:, 0], background=bg, n_samples=3)
    torch.testing.assert_close(phi_fn, (w[1] - 0.5 * w[0]).view(1, 3, 5, 5) * (x - bg), rtol=1e-12, atol=1e-12)


def test_quadratic_model_matches_the_analytic_expectation() -> None:
    """f(x) = sum(x^2): E_t of 2(x' + t(x - x')) (x - x') is x^2 - x'^2."""

    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.square().flatten(1).sum(1, keepdim=True)

    g = torch.Generator().manual_seed(3)
    x, bg = torch.randn(1, 1, 2, 2, generator=g, dtype=torch.float64), torch.randn(1, 1, 2, 2, generator=g,
                                                                                   dtype=torch.float64)
    phi = expected_gradients(Square(), x, 0, background=bg, n_samples=4000, batch_size=512)
    exact = x.square() - bg.square()
    se = 2 * (x - bg).square() / np.sqrt(12) / np.sqrt(4000)  # sd of 2 (x' + t d) d over t ~ U(0, 1) is 2 d^2 / sqrt 12
    assert ((phi - exact).abs() <= 4.5 * se + 1e-12).all()
    assert not torch.allclose(phi, exact, rtol=0, atol=1e-6)  # an estimate, not the exact answer


@pytest.mark.parametrize("where", [(None, "output"), ("conv2", "output"), ("conv2", "input"), ("relu1", "output"),
                                   ("fc", "input")])
def test_relu_cnn_sums_to_the_output_gap_within_sampling_error(where: tuple) -> None:
    model, (x, bg) = net(torch.float64), data(dtype=torch.float64)
    name, attribute_to = where
    layer = None if name is None else getattr(model, name)
    check = expected_gradients_check(model, x, [0, 2], background=bg, layer=layer, attribute_to=attribute_to,
                                     n_samples=400, batch_size=200)
    with torch.no_grad():
        gap = model(x)[[0, 1], [0, 2]] - model(bg)[:, [0, 2]].mean(0)
    torch.testing.assert_close(check.gap, gap, rtol=1e-10, atol=1e-12)
    assert (gap.abs() > 0.3).all(), "the test data must give a non-trivial gap"
    z = (check.total - gap) / check.standard_error
    assert (z.abs() < 4.5).all(), z
    assert ((check.total - gap).abs() / gap.abs() < 0.1).all()
    assert (check.standard_error > 1e-6).all()  # a ReLU network has sampling error: the z above is not vacuous


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("attribute_to", ["output", "input"])
def test_layer_form_equals_the_input_form_on_the_rest_of_the_network(inplace: bool, attribute_to: str) -> None:
    """EG at a layer is EG at the input of the network after it, with the layer's activations as images."""
    model, (x, bg) = net(torch.float64, inplace=inplace), data(dtype=torch.float64)
    layer = model.conv2 if attribute_to == "output" else model.relu2

    def head(model: Net) -> nn.Module:
        return nn.Sequential(model.relu2, model.pool, model.drop, nn.Flatten(), model.fc)

    def trunk(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.conv2(model.relu1(model.conv1(z)))

    ours = expected_gradients(model, x, [0, 2], background=bg, layer=layer, attribute_to=attribute_to, n_samples=9,
                              batch_size=5, seed=3)
    tail = expected_gradients(head(net(torch.float64)).eval(), trunk(x), [0, 2], background=trunk(bg),
                              n_samples=9, seed=3)  # head of an identical, separate copy: same weights
    assert ours.shape == (2, 8, 6, 6)
    torch.testing.assert_close(ours, tail, rtol=1e-10, atol=1e-12)


def test_check_reports_draw_sums_standard_error_and_a_table() -> None:
    model, (x, bg) = net(torch.float64), data(dtype=torch.float64)
    kw = {"layer": model.conv2, "n_samples": 300, "batch_size": 128, "seed": 3}
    check = expected_gradients_check(model, x, [0, 2], background=bg, **kw)
    plain = expected_gradients(model, x, [0, 2], background=bg, **kw)
    assert isinstance(check, ExpectedGradientsCheck)
    assert torch.equal(check.attributions, plain)  # the same draws, the same numbers
    assert check.draw_sums.shape == (2, 300) and check.gap.dtype == check.draw_sums.dtype == torch.float64
    torch.testing.assert_close(check.total, _sums(plain), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(check.standard_error, check.draw_sums.std(1) / 300**0.5)
    table = check.table()
    assert list(table.columns) == ["sum of attributions", "standard error", "f(x) - E f(x')", "z = (sum - gap) / SE"]
    np.testing.assert_allclose(table.iloc[:, 3], ((check.total - check.gap) / check.standard_error).numpy())
    single = expected_gradients_check(model, x, 0, background=bg, n_samples=1)
    assert torch.isnan(single.standard_error).all()


def test_more_samples_keep_the_first_draws_and_image_i_its_own() -> None:
    model, (x, bg) = net(torch.float64), data(3, dtype=torch.float64)
    five = expected_gradients_check(model, x, [0, 1, 2], background=bg, layer=model.conv2, n_samples=5, seed=4)
    ten = expected_gradients_check(model, x, [0, 1, 2], background=bg, layer=model.conv2, n_samples=10, seed=4)
    torch.testing.assert_close(ten.draw_sums[:, :5], five.draw_sums, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ten.draw_sums[:, 5:], five.draw_sums)
    alone = expected_gradients(model, x[:1], 0, background=bg, layer=model.conv2, n_samples=5, seed=4)
    torch.testing.assert_close(five.attributions[:1], alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_expected_gradients_batch_size_invariance_and_seeds(layer_name: str | None) -> None:
    model, (x, bg) = net(torch.float64), data(3, dtype=torch.float64)
    layer = None if layer_name is None else getattr(model, layer_name)
    kw = {"background": bg, "layer": layer, "n_samples": 10}
    runs = [expected_gradients(model, x, [0, 1, 2], batch_size=b, seed=5, **kw) for b in (1, 7, 50)]
    for r in runs[1:]:
        torch.testing.assert_close(r, runs[0], rtol=1e-10, atol=1e-12)
    assert torch.equal(expected_gradients(model, x, [0, 1, 2], seed=5, **kw),
                       expected_gradients(model, x, [0, 1, 2], seed=5, **kw))
    assert not torch.allclose(expected_gradients(model, x, [0, 1, 2], seed=6, **kw), runs[0])
    assert torch.equal(expected_gradients(model, x, [0, 1, 2], **kw),
                       expected_gradients(model, x, [0, 1, 2], seed=DEFAULT_SEED, **kw))


@pytest.mark.parametrize("layer_name", [None, "conv2"])
def test_logit_difference_is_the_difference_of_two_runs(layer_name: str | None) -> None:
    """EG is linear in the score and its draws depend on (seed, i, j) only: EG(z0 - z2) = EG(0) - EG(2)."""
    model, (x, bg) = net(torch.float64), data(dtype=torch.float64)
    layer = None if layer_name is None else getattr(model, layer_name)
    kw = {"background": bg, "layer": layer, "n_samples": 9, "batch_size": 5, "seed": 3}
    diff = expected_gradients_check(model, x, lambda z: z[:, 0] - z[:, 2], **kw)
    a, b = (expected_gradients_check(model, x, k, **kw) for k in (0, 2))
    torch.testing.assert_close(diff.attributions, a.attributions - b.attributions, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(diff.gap, a.gap - b.gap, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(diff.attributions, a.attributions)


def test_layer_shapes_and_the_input_of_a_layer_is_the_output_of_the_one_before() -> None:
    model, (x, bg) = net(), data()
    out = expected_gradients(model, x, 1, background=bg, layer=model.conv2, n_samples=4)
    inp = expected_gradients(model, x, 1, background=bg, layer=model.conv2, attribute_to="input", n_samples=4)
    assert out.shape == (2, 8, 6, 6) and inp.shape == (2, 6, 12, 12)
    same = expected_gradients(model, x, 1, background=bg, layer=model.relu1, n_samples=4)
    torch.testing.assert_close(inp, same, rtol=1e-5, atol=1e-7)


def test_layer_form_runs_the_part_before_the_layer_once_and_then_on_one_image() -> None:
    class Counter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.sizes.append(int(x.shape[0]))
            return x

    counter = Counter()
    model = nn.Sequential(counter, nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 2)).eval()
    x, bg = data(2, 5)
    expected_gradients(model, x, 1, background=bg, layer=model[2], n_samples=12, batch_size=8)
    # the inputs (one chunk of 2), the background (one chunk of 5), the separation check (1), 3 batches of draws
    assert counter.sizes == [2, 5, 1, 1, 1, 1]


def test_a_layer_that_a_skip_connection_bypasses_is_refused() -> None:
    model, (x, bg) = Residual().double(), data(dtype=torch.float64)
    before = fingerprint(model)
    for images in (x, x[:1]):  # one image too: the dummy the check runs on is not the input
        for at in ("output", "input"):
            with pytest.raises(ValueError, match="does not separate"):
                expected_gradients(model, images, 0, background=bg, layer=model.conv2, attribute_to=at, n_samples=2)
    assert fingerprint(model) == before
    assert expected_gradients(model, x, 0, background=bg, layer=model.conv1, n_samples=2).shape == (2, 4, 12, 12)


def test_expected_gradients_refuses_a_layer_called_twice_or_never_and_leaves_no_hook() -> None:
    model, (x, bg) = Shared(), data()
    model.conv.register_forward_hook(lambda *args: None)
    before = fingerprint(model)
    with pytest.raises(ValueError, match="called 2 times"):
        expected_gradients(model, x, 0, background=bg, layer=model.relu, n_samples=2)
    for at in ("output", "input"):
        with pytest.raises(ValueError, match="called 0 times"):
            expected_gradients_check(model, x, 0, background=bg, layer=model.unused, attribute_to=at, n_samples=2)
    assert fingerprint(model) == before


# --------------------------------------------------------------------------- shap


def _exact_input_eg(model: nn.Module, x: torch.Tensor, bg: torch.Tensor, target: int, n_t: int = 256) -> torch.Tensor:
    """E over every background image and t (midpoint rule) of grad f(x' + t (x - x')) * (x - x')."""
    ts = (torch.arange(n_t, dtype=x.dtype) + 0.5) / n_t
    total = torch.zeros_like(x)
    for xb in bg:
        z = (xb + ts.view(-1, 1, 1, 1) * (x[0] - xb)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(z)[:, target].sum(), z)
        total += grad.mean(0, keepdim=True) * (x - xb)
    return total / bg.shape[0]


def _raw_shap(spec, bg: torch.Tensor, x: torch.Tensor, n_samples: int, seed: int) -> np.ndarray:
    """shap's GradientExplainer as the library runs it (all outputs), NumPy's global state restored."""
    shap = pytest.importorskip("shap")
    state = np.random.get_state()
    try:
        return np.asarray(shap.GradientExplainer(spec, bg).shap_values(x, nsamples=n_samples, rseed=seed))
    finally:
        np.random.set_state(state)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_expected_gradients_and_the_shap_bridge_agree_with_shap_and_the_exact_answer_at_the_input() -> None:
    pytest.importorskip("shap")
    model, (x, bg) = net(), data(1)
    exact = _exact_input_eg(net(torch.float64), x.double(), bg.double(), 1)
    ours = expected_gradients(model, x, 1, background=bg, n_samples=1500, batch_size=500).double()
    bridge = shap_gradient_explainer(model, x, 1, background=bg, n_samples=1500, batch_size=500).double()
    theirs = torch.as_tensor(_raw_shap(model, bg, x, 1500, DEFAULT_SEED)[..., 1], dtype=torch.float64)
    torch.testing.assert_close(bridge, theirs, rtol=1e-5, atol=1e-7)  # the bridge is shap's own estimator
    # both unbiased Monte Carlo estimates of the same expectation
    assert rel(ours, exact) < 0.04 and rel(theirs, exact) < 0.04 and rel(ours, theirs) < 0.06
    wrong = expected_gradients(model, x, 2, background=bg, n_samples=300).double()
    assert rel(wrong, exact) > 0.5  # and the comparison can fail


def test_shap_layer_form_explains_the_layer_input_and_does_not_sum_to_the_gap() -> None:
    """shap's (model, layer) form interpolates in input space and multiplies by the layer input at the
    interpolated point: another estimator than expected gradients at the layer input, and not complete."""
    pytest.importorskip("shap")
    model, (x, bg) = net(), data()
    bridge = shap_gradient_explainer(model, x, 1, background=bg, layer=model.conv2, n_samples=300)
    theirs = _raw_shap((model, model.conv2), bg, x, 300, DEFAULT_SEED)[..., 1]
    ours = expected_gradients_check(model, x, 1, background=bg, layer=model.conv2, attribute_to="input",
                                    n_samples=300)
    assert bridge.shape == ours.attributions.shape == theirs.shape == (2, 6, 12, 12)  # conv2's input
    np.testing.assert_allclose(bridge.numpy(), theirs, rtol=1e-5, atol=1e-7)
    assert ((ours.total - ours.gap).abs() < 0.1 * ours.gap.abs()).all()
    assert ((_sums(bridge) - ours.gap).abs() / ours.gap.abs()).max() > 0.2
    assert rel(bridge, ours.attributions) > 0.3


def test_shap_bridge_targets_give_the_numbers_of_raw_shap() -> None:
    pytest.importorskip("shap")
    model, (x, bg) = net(), data(3)
    kw = {"background": bg, "n_samples": 12, "seed": 7}
    raw = _raw_shap(model, bg, x, 12, 7)  # (3, 3, 12, 12, classes)
    one = shap_gradient_explainer(model, x, 2, **kw)
    assert one.shape == x.shape and one.dtype == x.dtype
    np.testing.assert_allclose(one.numpy(), raw[..., 2], rtol=1e-5, atol=1e-7)
    # per-image targets: the images of one class are explained together, each group from the same seed
    per_image = shap_gradient_explainer(model, x, [0, 1, 0], **kw)
    np.testing.assert_allclose(per_image[[0, 2]].numpy(), _raw_shap(model, bg, x[[0, 2]], 12, 7)[..., 0], rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(per_image[1].numpy(), _raw_shap(model, bg, x[1:2], 12, 7)[0, ..., 1], rtol=1e-5,
                               atol=1e-7)
    diff = shap_gradient_explainer(model, x, lambda z: z[:, 0] - z[:, 2], **kw)  # linear in the score
    torch.testing.assert_close(diff, torch.as_tensor(raw[..., 0] - raw[..., 2]).float(), rtol=1e-4, atol=1e-6)


def test_shap_bridge_layer_form_with_a_score_callable_and_noise_tunnel() -> None:
    pytest.importorskip("shap")
    model, (x, bg) = net(), data()
    kw = {"background": bg, "layer": model.conv2, "n_samples": 6, "seed": 1}
    a, b = shap_gradient_explainer(model, x, 0, **kw), shap_gradient_explainer(model, x, 2, **kw)
    diff = shap_gradient_explainer(model, x, lambda z: z[:, 0] - z[:, 2], **kw)
    torch.testing.assert_close(diff, a - b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a, b)
    method = functools.partial(shap_gradient_explainer, background=bg, n_samples=4)
    smoothed = noise_tunnel(method, model, x, 2, n_samples=2, noise_level=0.1, seed=3)
    expected = torch.stack([method(model, add_noise(x, 0.1, seed=3, sample_index=j), 2) for j in range(2)]).mean(0)
    torch.testing.assert_close(smoothed, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the model left exactly as found


def test_a_train_mode_model_is_evaluated_in_eval_mode_and_left_in_train_mode() -> None:
    inner = net(extras=True)
    with torch.no_grad():
        inner.bn.running_mean.uniform_(-0.5, 0.5)
    rec = Recorder(dirty(inner))
    rec.train()
    before = fingerprint(rec)
    x, bg = data()
    out = smoothgrad(rec, x, [1, 2], n_samples=5, batch_size=3)
    expected_gradients(rec, x, 1, background=bg, layer=inner.conv2, n_samples=3)
    assert fingerprint(rec) == before
    assert not any(rec.training_seen) and not any(rec.requires_grad_seen)
    inner.eval()  # eval mode: no dropout, running BN statistics; the same as an explicit eval-mode run
    torch.testing.assert_close(out, smoothgrad(inner, x, [1, 2], n_samples=5))


def test_no_parameter_gradients_and_bounded_batches() -> None:
    rec = Recorder(net())
    x, _ = data(3)
    smoothgrad(rec, x, 1, n_samples=7, batch_size=4)
    assert max(rec.batches) <= 4 and sum(rec.batches) == 21
    assert all(p.grad is None and p.requires_grad for p in rec.parameters())
    rec.batches.clear()
    smoothgrad(rec, x, 1, n_samples=10)  # batch_size=None: BATCH_PIXELS // (12 * 12) rows per pass, all 30 at once
    assert BATCH_PIXELS // 144 >= 30 and rec.batches == [30]


CALLS = {  # name -> call(model, inner) that runs long enough to be interrupted at the 1st, 2nd or 3rd forward
    "gradient": lambda m, inner: gradient(m, data(3)[0], 0, batch_size=1),
    "gradient_x_input": lambda m, inner: gradient_x_input(m, data(3)[0], 0, batch_size=1),
    "smoothgrad": lambda m, inner: smoothgrad(m, data()[0], [0, 1], n_samples=8, batch_size=2),
    "smoothgrad_convergence": lambda m, inner: smoothgrad_convergence(m, data()[0], 1, counts=[2, 4], batch_size=2),
    "noise_tunnel": lambda m, inner: noise_tunnel(functools.partial(gradient), m, data()[0], 1, n_samples=4),
    "layer_activations": lambda m, inner: layer_activations(m, data(3)[0], layer=inner.conv2, batch_size=1),
    "expected_gradients": lambda m, inner: expected_gradients(m, data()[0], 0, background=data()[1], n_samples=8,
                                                              batch_size=2),
    "expected_gradients_layer": lambda m, inner: expected_gradients_check(m, data()[0], 0, background=data()[1],
                                                                          layer=inner.conv2, n_samples=8, batch_size=2),
    "shap_gradient_explainer": lambda m, inner: shap_gradient_explainer(m, data()[0], 0, background=data()[1],
                                                                        n_samples=4),
    "shap_gradient_explainer_layer": lambda m, inner: shap_gradient_explainer(m, data()[0], 0, background=data()[1],
                                                                              layer=inner.conv2, n_samples=4),
}


@pytest.mark.parametrize("name,fail_at", [
    *[(n, k) for n in CALLS if not n.startswith("shap") for k in (1, 2, 3)],
    ("shap_gradient_explainer", 1), ("shap_gradient_explainer", 2),
    pytest.param("shap_gradient_explainer_layer", 1),
    pytest.param("shap_gradient_explainer_layer", 2),
    ("shap_gradient_explainer_layer", 3),
])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_inside_the_model_mid_run_leaves_it_as_found(name: str, fail_at: int, error: type) -> None:
    if name.startswith("shap"):
        pytest.importorskip("shap")
    inner = dirty(net())
    model = Recorder(inner, fail_at, error)
    model.train()
    before, np_state = fingerprint(model), np.random.get_state()[1].copy()
    with pytest.raises(error, match="boom"):
        CALLS[name](model, inner)
    assert len(model.batches) == fail_at
    assert fingerprint(model) == before
    assert np.array_equal(np.random.get_state()[1], np_state)  # shap reseeds NumPy's global RNG: restored


def test_every_method_leaves_the_model_as_found() -> None:
    inner = dirty(net())
    model = Recorder(inner)
    model.train()
    before = fingerprint(model)
    for name, call in CALLS.items():
        call(model, inner)
        assert fingerprint(model) == before, name


def test_a_refusal_after_a_forward_pass_leaves_the_model_as_found() -> None:
    model, (x, bg) = dirty(net()), data()
    before = fingerprint(model)
    for layer in (None, model.conv2):  # target 7 is out of range of 3 logits: found after a forward pass
        with pytest.raises(ValueError, match="target"):
            expected_gradients(model, x, 7, background=bg, layer=layer, n_samples=3)
        for bad in (lambda z: z, lambda z: z[:1, 0], lambda z: "score", lambda z: z.argmax(1)):
            with pytest.raises(ValueError, match="target callable"):
                expected_gradients_check(model, x, bad, background=bg, layer=layer, n_samples=2)
    with pytest.raises(ValueError, match="target"):
        smoothgrad(model, x, 7, n_samples=2)
    assert fingerprint(model) == before


# --------------------------------------------------------------------------- the device policy


DEVICE_CALLS = {
    "gradient": lambda m, x, bg: gradient(m, x, 1),
    "gradient_x_input": lambda m, x, bg: gradient_x_input(m, x, 1),
    "smoothgrad": lambda m, x, bg: smoothgrad(m, x, 1, n_samples=2),
    "smoothgrad_convergence": lambda m, x, bg: smoothgrad_convergence(m, x, 1, counts=[1, 2])[-1],
    "noise_tunnel": lambda m, x, bg: noise_tunnel(functools.partial(gradient_x_input, batch_size=1), m, x, 1,
                                                  n_samples=2),
    "layer_activations": lambda m, x, bg: layer_activations(m, x, layer=m.conv2),
    "expected_gradients": lambda m, x, bg: expected_gradients(m, x, 1, background=bg, n_samples=3),
    "expected_gradients_layer": lambda m, x, bg: expected_gradients(m, x, 1, background=bg, layer=m.conv2, n_samples=3),
    "shap_gradient_explainer": lambda m, x, bg: shap_gradient_explainer(m, x, 1, background=bg, n_samples=3),
}


@pytest.mark.parametrize("name", list(DEVICE_CALLS))
def test_every_method_runs_where_the_model_is_and_returns_where_the_inputs_were(name: str, fake_model_device) -> None:
    model, (x, bg) = net(), data(2, 3)
    out = DEVICE_CALLS[name](model, x, bg)
    assert (2, 3, 12, 12) in fake_model_device  # the inputs went to the model's device
    assert out.device == x.device and out.dtype == x.dtype


def test_the_check_returns_every_tensor_where_the_inputs_were(fake_model_device) -> None:
    model, (x, bg) = net(), data()
    check = expected_gradients_check(model, x, 1, background=bg, layer=model.conv2, n_samples=3)
    assert (2, 3, 12, 12) in fake_model_device and all(t.device == x.device for t in check)


@cuda
def test_cuda_smoothgrad_same_noise_as_the_cpu_any_batch_size_model_as_found() -> None:
    model, (x, _) = net(torch.float64), data(3, dtype=torch.float64)
    kw = {"n_samples": 9, "noise_level": 0.2, "seed": 11, "variant": "vargrad"}
    cpu = smoothgrad(model, x, [0, 1, 2], **kw)
    model.cuda()
    before = fingerprint(model)
    for anti in (False, True):  # the noise is drawn on the CPU and moved: the same copies on both devices
        assert torch.equal(add_noise(x.cuda(), 0.2, seed=9, sample_index=3, antithetic=anti).cpu(),
                           add_noise(x, 0.2, seed=9, sample_index=3, antithetic=anti))
    for bs in (1, 7, 50):
        gpu = smoothgrad(model, x.cuda(), [0, 1, 2], batch_size=bs, **kw)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-12)
    assert smoothgrad(model, x, [0, 1, 2], **kw).device == x.device  # a CUDA model, CPU inputs: results on the CPU
    assert fingerprint(model) == before


@cuda
def test_cuda_expected_gradients_match_the_cpu() -> None:
    model, (x, bg) = net(torch.float64), data(dtype=torch.float64)
    cpu = expected_gradients(model, x, [0, 1], background=bg, layer=model.conv2, n_samples=16, seed=2)
    model_cuda = net(torch.float64).cuda()
    before = fingerprint(model_cuda)
    gpu = expected_gradients(model_cuda, x, [0, 1], background=bg, layer=model_cuda.conv2, n_samples=16,
                             batch_size=5, seed=2)
    assert gpu.device == x.device
    torch.testing.assert_close(gpu, cpu, rtol=1e-8, atol=1e-10)
    gpu_in = expected_gradients(model_cuda, x.cuda(), [0, 1], background=bg.cuda(), n_samples=16, seed=2)
    assert gpu_in.device.type == "cuda"
    torch.testing.assert_close(gpu_in.cpu(), expected_gradients(model, x, [0, 1], background=bg, n_samples=16, seed=2),
                               rtol=1e-8, atol=1e-10)
    assert fingerprint(model_cuda) == before


# --------------------------------------------------------------------------- conventions and bad inputs


def _public_functions() -> dict:
    return {n: f for n, f in vars(methods).items()
            if inspect.isfunction(f) and f.__module__ == methods.__name__ and not n.startswith("_")}


def test_one_convention_in_every_signature() -> None:
    """layer a keyword, n_samples (never nsamples), seed=DEFAULT_SEED, batch_size=None, the method first."""
    for name, fn in _public_functions().items():
        params = inspect.signature(fn).parameters
        assert "nsamples" not in params and "diagnostics" not in params and "progress" not in params, name
        if "layer" in params:
            assert params["layer"].kind is inspect.Parameter.KEYWORD_ONLY, name
        if "seed" in params:
            assert params["seed"].default == DEFAULT_SEED and params["seed"].kind is inspect.Parameter.KEYWORD_ONLY
        if "batch_size" in params:
            assert params["batch_size"].default is None, name
        if "background" in params:
            assert params["background"].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert list(inspect.signature(noise_tunnel).parameters)[:4] == ["method", "model", "inputs", "target"]
    for fn in (gradient, gradient_x_input, smoothgrad, smoothgrad_convergence, expected_gradients,
               expected_gradients_check, shap_gradient_explainer):
        assert list(inspect.signature(fn).parameters)[:3] == ["model", "inputs", "target"], fn.__name__


def _bad(fn, *args, **kwargs):
    return lambda: fn(*args, **kwargs)


M, (X, BG) = net(), data(2, 3)
NAN = torch.full((1, 3, 12, 12), float("nan"))
INF = X.clone()
INF[1, 2, 3, 4] = float("inf")


def _input_cases(fn, *lead, target: tuple = (1,), **kw) -> list:
    """The bad models, inputs and batch sizes every method refuses the same way."""
    return [
        (_bad(fn, *lead, "resnet", X, *target, **kw), TypeError, "model.*str"),
        (_bad(fn, *lead, M, X.numpy(), *target, **kw), TypeError, "inputs.*ndarray"),
        (_bad(fn, *lead, M, X[0], *target, **kw), ValueError, r"inputs.*\(3, 12, 12\)"),
        (_bad(fn, *lead, M, X[:0], *target, **kw), ValueError, r"inputs.*\(0, 3, 12, 12\)"),
        (_bad(fn, *lead, M, X.long(), *target, **kw), ValueError, "inputs.*int64"),
        (_bad(fn, *lead, M, NAN, *target, **kw), ValueError, "inputs.*NaN"),
        (_bad(fn, *lead, M, INF, *target, **kw), ValueError, "inputs.*inf"),
        (_bad(fn, *lead, M, X, *target, **kw, batch_size=0), ValueError, "batch_size.*0"),
        (_bad(fn, *lead, M, X, *target, **kw, batch_size=True), ValueError, "batch_size.*True"),
    ]


def _target_cases(fn, *lead, **kw) -> list:
    return [pytest.param(_bad(fn, *lead, M, X, t, **kw), ValueError, match, marks=mark) for t, match, mark in [
        (3, r"target out of range \[0, 3\).*3", ()), (-1, "target.*-1", ()),
        ([1], "target.*one class index per input.*2", ()), ([1, 2, 0], "target.*2.*3", ()),
        ([1.0, 2.0], r"target.*\[1.0, 2.0\]", ()), ("cat", "target.*cat", ()), (True, "target.*True", ()),
        (None, "target.*None", ()), ([], "target", ()),
        *[(bad, "target callable", ())
          for bad in (lambda z: z, lambda z: z.argmax(1), lambda z: "score")],
    ]]


def _noise_cases(fn, *lead, counts=False) -> list:
    kw = {"counts": [1, 2]} if counts else {"n_samples": 2}
    cases = [
        (_bad(fn, *lead, M, X, 1, **kw, noise_level=-0.1), ValueError, "noise_level.*-0.1"),
        (_bad(fn, *lead, M, X, 1, **kw, noise_level=float("nan")), ValueError, "noise_level.*nan"),
        (_bad(fn, *lead, M, X, 1, **kw, noise_level="0.1"), ValueError, "noise_level.*'0.1'"),
        (_bad(fn, *lead, M, X, 1, **kw, variant="smoothgrad2"), ValueError, "variant.*smoothgrad2"),
        (_bad(fn, *lead, M, X, 1, **kw, variant=None), ValueError, "variant.*None"),
        (_bad(fn, *lead, M, X, 1, **kw, seed=-1), ValueError, "seed.*-1"),
        (_bad(fn, *lead, M, X, 1, **kw, seed=1.5), ValueError, "seed.*1.5"),
        (_bad(fn, *lead, M, X, 1, **kw, seed="0"), ValueError, "seed"),
        pytest.param(_bad(fn, *lead, M, X, 1, **kw, antithetic="yes"), (TypeError, ValueError), "antithetic.*yes"),
    ]
    if counts:
        return cases + [(_bad(fn, M, X, 1, counts=c), ValueError, "counts")
                        for c in ([], [0, 2], [3, 3], [4, 2], "12", 0, [1.5], None, [True, 2])]
    return cases + [(_bad(fn, *lead, M, X, 1, n_samples=n), ValueError, f"n_samples.*{n}")
                    for n in (0, -3, 2.5, True, [5, 2])]


def _eg_cases(fn) -> list:
    cases = []
    for layer in (None, M.conv2):  # the input form and the layer form
        kw = {"background": BG, "layer": layer, "n_samples": 2}
        cases += [
            (_bad(fn, M, X, 0, **{**kw, "background": BG[:, :, :10]}), ValueError, r"background.*\(3, 3, 10, 12\)"),
            (_bad(fn, M, X, 0, **{**kw, "background": BG[:, :1]}), ValueError, "background"),
            (_bad(fn, M, X, 0, **{**kw, "background": BG[:0]}), ValueError, "background"),
            (_bad(fn, M, X, 0, **{**kw, "background": NAN}), ValueError, "background.*NaN"),
            (_bad(fn, M, X, 0, **{**kw, "background": [0.0]}), TypeError, "background"),
            (_bad(fn, M, X, 0, **{**kw, "n_samples": 0}), ValueError, "n_samples.*0"),
            (_bad(fn, M, X, 0, **{**kw, "n_samples": 2.5}), ValueError, "n_samples.*2.5"),
            (_bad(fn, M, X, 0, **kw, seed=-1), ValueError, "seed.*-1"),
            (_bad(fn, M, X, 0, **kw, seed="0"), ValueError, "seed"),
            (_bad(fn, M, X, 0, **kw, attribute_to="middle"), ValueError, "attribute_to.*middle"),
        ]
    return cases + [
        (_bad(fn, M, X, 0, background=BG, layer="conv2"), TypeError, "layer.*str"),
        (_bad(fn, M, X, 0, background=BG, layer=nn.Conv2d(3, 6, 3)), ValueError, "layer.*submodule"),
        (_bad(fn, M, X, 0), TypeError, "background"),  # a required keyword
        (_bad(fn, M, X, BG, 0), TypeError, "positional"),  # the old order (background third) is refused
    ]


def _shap_cases() -> list:
    fn = shap_gradient_explainer
    return [
        pytest.param(_bad(fn, M, X, 0, background=BG[:, :, :10]), ValueError, "background"),
        pytest.param(_bad(fn, M, X, 0, background=BG[:, :1]), ValueError, "background"),
        pytest.param(_bad(fn, M, X, 1, background=BG[:, :, :10], layer=M.conv2), ValueError, "background"),
        (_bad(fn, M, X, 0, background=BG[:0]), ValueError, "background"),
        (_bad(fn, M, X, 0, background=[0.0]), TypeError, "background"),
        (_bad(fn, M, X, 0, background=BG, n_samples=0), ValueError, "n_samples.*0"),
        (_bad(fn, M, X, 0, background=BG, seed=-1), ValueError, "seed.*-1"),
        (_bad(fn, M, X, 0, background=BG, layer="conv2"), TypeError, "layer"),
        (_bad(fn, M, X, 0, background=BG, layer=nn.ReLU()), ValueError, "layer"),
        (_bad(fn, M, X, 0), TypeError, "background"),
    ]


BAD_CALLS = {
    "gradient": _input_cases(gradient) + _target_cases(gradient),
    "gradient_x_input": _input_cases(gradient_x_input) + _target_cases(gradient_x_input),
    "smoothgrad": _input_cases(smoothgrad, n_samples=2) + _target_cases(smoothgrad, n_samples=2)
    + _noise_cases(smoothgrad),
    "smoothgrad_convergence": _input_cases(smoothgrad_convergence, counts=[1, 2])
    + _target_cases(smoothgrad_convergence, counts=[1, 2]) + _noise_cases(smoothgrad_convergence, counts=True),
    "noise_tunnel": _input_cases(noise_tunnel, gradient, n_samples=2)
    + _target_cases(noise_tunnel, gradient, n_samples=2) + _noise_cases(noise_tunnel, gradient) + [
        (_bad(noise_tunnel, "gradient", M, X, 1), TypeError, "method.*str"),
        (_bad(noise_tunnel, lambda m, i, t: torch.zeros(1), M, X, 1, n_samples=2), ValueError,
         r"method must return one attribution per input \(2, ...\).*\(1,\)"),
        (_bad(noise_tunnel, lambda m, i, t: None, M, X, 1, n_samples=2), ValueError, "method.*NoneType"),
        (_bad(noise_tunnel, functools.partial(gradient), M, X, 1, n_samples=2, batch_size=0), ValueError,
         "batch_size"),  # the per-sample path checks it too
        (_bad(noise_tunnel, M, gradient, X, 1), TypeError, "model.*function"),  # the method comes first
    ],
    "add_noise": [
        (_bad(add_noise, X.numpy(), 0.1), TypeError, "inputs"),
        (_bad(add_noise, X[0], 0.1), ValueError, "inputs"),
        (_bad(add_noise, NAN, 0.1), ValueError, "inputs.*NaN"),
        (_bad(add_noise, X, -1.0), ValueError, "noise_level.*-1.0"),
        (_bad(add_noise, X, "0.1"), ValueError, "noise_level"),
        (_bad(add_noise, X, 0.1, seed=-1), ValueError, "seed.*-1"),
        (_bad(add_noise, X, 0.1, sample_index=-1), ValueError, "sample_index.*-1"),
        (_bad(add_noise, X, 0.1, sample_index=1.5), ValueError, "sample_index.*1.5"),
        pytest.param(_bad(add_noise, X, 0.1, antithetic="yes"), (TypeError, ValueError), "antithetic"),
    ],
    "layer_activations": _input_cases(layer_activations, target=(), layer=M.conv2) + [
        (_bad(layer_activations, M, X, layer=None), TypeError, "layer.*NoneType"),
        (_bad(layer_activations, M, X, layer="conv2"), TypeError, "layer.*str"),
        (_bad(layer_activations, M, X, layer=nn.ReLU()), ValueError, "layer.*submodule"),
        (_bad(layer_activations, M, X, layer=M.conv2, batch_size=0), ValueError, "batch_size.*0"),
        (_bad(layer_activations, M, X, M.conv2), TypeError, "positional"),  # layer is a keyword
    ],
    "expected_gradients": _input_cases(expected_gradients, background=BG, n_samples=2)
    + _target_cases(expected_gradients, background=BG, n_samples=2) + _eg_cases(expected_gradients),
    "expected_gradients_check": _input_cases(expected_gradients_check, background=BG, n_samples=2)
    + _target_cases(expected_gradients_check, background=BG, n_samples=2) + _eg_cases(expected_gradients_check),
    "shap_gradient_explainer": _input_cases(shap_gradient_explainer, background=BG, n_samples=2)
    + _target_cases(shap_gradient_explainer, background=BG, n_samples=2) + _shap_cases(),
}


def test_every_public_function_is_swept() -> None:
    assert set(_public_functions()) == set(BAD_CALLS)


def _case_id(name: str, i: int) -> str:
    return f"{name}-{i}"


CASES = [pytest.param(name, *case.values, marks=case.marks, id=_case_id(name, i)) if hasattr(case, "marks")
         else pytest.param(name, *case, id=_case_id(name, i))
         for name, cases in BAD_CALLS.items() for i, case in enumerate(cases)]


@pytest.mark.parametrize("name,call,error,match", CASES)
def test_bad_input_raises_an_error_naming_the_argument(name: str, call, error, match: str) -> None:
    if name == "shap_gradient_explainer":
        pytest.importorskip("shap")
    before = fingerprint(M)
    with pytest.raises(error, match=match):
        call()
    assert fingerprint(M) == before


def test_a_model_that_does_not_return_logits_is_reported() -> None:
    model, (x, bg) = nn.Sequential(nn.Conv2d(3, 2, 1)), data()  # feature maps, not (N, K) logits
    before = fingerprint(model)
    for call in (lambda: gradient(model, x, 1), lambda: smoothgrad(model, x, 1, n_samples=2),
                 lambda: expected_gradients(model, x, 0, background=bg, n_samples=2),
                 lambda: expected_gradients(model, x, 0, background=bg, layer=model[0], n_samples=2)):
        with pytest.raises(ValueError, match=r"model must map .* \(N, K\) logits.*\(\d+, 2, 12, 12\)"):
            call()
    assert fingerprint(model) == before
