"""The attribution protocol (interp_helpers.attribution.core): targets, device policy, noise_tunnel over any method."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from interp_helpers.attribution import core
from interp_helpers.attribution.gradient import gradient, gradient_x_input
from interp_helpers.attribution.noise import add_noise, noise_tunnel, smoothgrad
from interp_helpers.hooks import model_fingerprint


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(beta=2.0), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5)).eval()


def images(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 6, 6, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- targets


def test_callable_target_equals_index_and_logit_difference_is_linear():
    model, x = small_cnn(), images()
    g1 = gradient(model, x, 1)
    torch.testing.assert_close(gradient(model, x, lambda z: z[:, 1]), g1)
    diff = gradient(model, x, lambda z: z[:, 1] - z[:, 3])
    torch.testing.assert_close(diff, g1 - gradient(model, x, 3), rtol=1e-5, atol=1e-6)


def test_callable_target_must_return_one_score_per_row():
    model, x = small_cnn(), images()
    fp = model_fingerprint(model)
    with pytest.raises(ValueError, match="target callable.*one floating score per row"):
        gradient(model, x, lambda z: z)  # (B, K), not (B,)
    with pytest.raises(ValueError, match="target callable"):
        gradient(model, x, lambda z: z.argmax(1))  # integer scores
    assert model_fingerprint(model) == fp


def test_targets_out_of_range_of_the_logits_name_target():
    with pytest.raises(ValueError, match=r"target out of range \[0, 5\).*\[7\]"):
        gradient(small_cnn(), images(), 7)


# --------------------------------------------------------------------------- noise_tunnel


def test_noise_tunnel_over_gradient_is_smoothgrad_exactly():
    model, x = small_cnn(), images()
    kw = dict(n_samples=6, noise_level=0.2, seed=3, batch_size=4)
    assert torch.equal(noise_tunnel(gradient, model, x, [0, 1, 2], **kw), smoothgrad(model, x, [0, 1, 2], **kw))


@pytest.mark.parametrize("variant", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_per_sample_path_agrees_with_the_batched_path(variant):
    """A partial of gradient is not declared row-wise, so it is called once per sample: same noise, same result."""
    model, x = small_cnn(), images()
    kw = dict(n_samples=5, noise_level=0.15, seed=11, variant=variant)
    batched = noise_tunnel(gradient, model, x, 2, batch_size=3, **kw)
    per_sample = noise_tunnel(functools.partial(gradient, batch_size=2), model, x, 2, **kw)
    torch.testing.assert_close(per_sample, batched, rtol=1e-5, atol=1e-7)


def test_noise_tunnel_of_gradient_x_input_is_the_mean_over_noisy_copies():
    """Known answer from the definition: mean_j grad(x + eps_j) * (x + eps_j), eps_j from add_noise."""
    model, x = small_cnn(), images(2)
    expected = torch.zeros_like(x)
    for j in range(4):
        noisy = add_noise(x, 0.1, seed=5, sample_index=j)
        expected += gradient(model, noisy, [1, 4]) * noisy / 4
    got = noise_tunnel(gradient_x_input, model, x, [1, 4], n_samples=4, noise_level=0.1, seed=5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_noise_tunnel_over_a_user_method_with_another_output_shape():
    """Any protocol method: here one score per image and channel; the target is passed through."""
    seen = []

    def channel_gradient(model, inputs, target):
        seen.append(target)
        return gradient(model, inputs, target).sum(dim=(2, 3))  # (N, C)

    model, x = small_cnn(), images()
    out = noise_tunnel(channel_gradient, model, x, 1, n_samples=3, seed=0)
    assert out.shape == (3, 3) and len(seen) == 3
    assert all(torch.equal(t, torch.ones(3, dtype=torch.long)) for t in seen)
    ref = smoothgrad(model, x, 1, n_samples=3, seed=0).sum(dim=(2, 3))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_noise_tunnel_rejects_bad_methods():
    model, x = small_cnn(), images()
    with pytest.raises(TypeError, match="explain"):
        noise_tunnel("gradient", model, x, 1)
    with pytest.raises(ValueError, match="explain must return one attribution per input"):
        noise_tunnel(lambda m, i, t: torch.zeros(1), model, x, 1, n_samples=2)


# --------------------------------------------------------------------------- device policy


@pytest.mark.parametrize("method", [
    gradient,
    gradient_x_input,
    functools.partial(smoothgrad, n_samples=2),
    functools.partial(noise_tunnel, functools.partial(gradient_x_input, batch_size=1), n_samples=2),
])
def test_every_method_runs_where_the_model_is_and_returns_where_the_inputs_were(method, fake_model_device):
    model, x = small_cnn(), images()
    out = method(model, x, 1)
    assert (3, 3, 6, 6) in fake_model_device  # the inputs were moved to the model's device
    assert out.device == x.device and out.dtype == x.dtype and out.shape == x.shape


def test_prepare_keeps_home_and_dtype():
    prep = core.prepare(small_cnn(), images(), [0, 1, 2])
    assert prep.home == torch.device("cpu") and prep.dtype == torch.float32
    assert prep.targets.indices.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="target must be class indices"):
        core.prepare(small_cnn(), images(), lambda z: z[:, 0], allow_callable=False)


def test_a_wrapper_of_a_rowwise_method_is_called_as_written():
    """functools.wraps copies a function's attributes: the fast path must not replace the wrapper by gradient."""
    calls = []

    @functools.wraps(gradient)
    def abs_gradient(model, inputs, target):
        calls.append(inputs.shape[0])
        return gradient(model, inputs, target).abs()

    model, x = small_cnn(), images()
    out = noise_tunnel(abs_gradient, model, x, 1, n_samples=3, seed=2)
    assert calls == [3, 3, 3] and float(out.min()) >= 0  # a mean of |g| is never negative
    expected = sum(gradient(model, add_noise(x, 0.15, seed=2, sample_index=j), 1).abs() for j in range(3)) / 3
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(progress="no"), TypeError, "progress"),
    (dict(progress=0), TypeError, "progress"),
    (dict(batch_size="abc"), ValueError, "batch_size"),
])
def test_noise_tunnel_checks_every_argument_on_both_paths(kwargs, error, match):
    model, x = small_cnn(), images()
    for method in (gradient, functools.partial(gradient, batch_size=2)):
        with pytest.raises(error, match=match):
            noise_tunnel(method, model, x, 1, n_samples=2, **kwargs)


def test_a_score_that_does_not_depend_on_the_input_has_zero_gradient():
    model, x = small_cnn(), images()
    assert torch.equal(gradient(model, x, lambda z: torch.zeros(z.shape[0])), torch.zeros_like(x))


def test_targets_keep_their_host_copy_through_chunks():
    prep = core.prepare(small_cnn(), images(), [2, 0, 4])
    rows = prep.targets.repeat_interleave(2).take(1, 5)
    assert rows._host is not None and rows._host.tolist() == [2, 0, 0, 4]  # sliced, not copied back from a device
    assert rows.indices.tolist() == [2, 0, 0, 4]
