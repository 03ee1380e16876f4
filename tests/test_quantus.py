"""Cross-checks of interp_helpers.evaluation against Quantus 0.6 (Hedström et al. 2023, JMLR), a test-only dependency.

* **Deletion vs ``quantus.PixelFlipping``.** Same model, same map, same baseline, same step size: the curves
  agree to float32 rounding once Quantus's conventions are aligned with ours. The conventions that differ
  (read from ``quantus/metrics/faithfulness/pixel_flipping.py`` and ``quantus/helpers/utils.py``):

  - Quantus ranks the flattened ``(C, H, W)`` map; we rank pixels. Give Quantus our channel-reduced map
    broadcast over the channels and ``features_in_step = C * pixels per step`` (all values distinct, so the C
    copies of a pixel are adjacent in its order and each step flips whole pixels).
  - Quantus's curve has no point for the unperturbed input: it equals our ``scores[:, 1:]``.
  - Quantus's ``perturb_baseline="black"`` is each image's minimum over all channels (after normalisation,
    so neither black nor our ``"zero"``); ``perturb_baseline=0.0`` is our ``"zero"``.
  - ``softmax=True`` (Quantus's default for this call) adds a float32 softmax; ours is computed in float64
    from the same logits: equal to ~1e-7.
  - ``abs=False, normalise=True`` by default: normalising by the maximum leaves the ranking unchanged, and
    our map is already non-negative; we switch both off to compare like with like.
  - ``return_auc_per_sample=True`` gives ``np.trapz(curve, dx=1)`` without the start point (and fails on
    NumPy >= 2.4, where ``np.trapz`` is gone); our AUC is the
    trapezoid over the fraction of pixels *with* the start point (RISE's ``auc``), i.e.
    ``auc * steps == quantus_auc + (s_0 + s_1) / 2``.

* **Cascading randomization vs ``quantus.MPRT``** (``layer_order="top_down"``, Spearman of ``|map|``
  normalised by its maximum: the same similarity as ours). MPRT re-initialises *every* module that has
  ``reset_parameters`` -- batch norm included -- one per step, from the output down, seeding
  ``torch.manual_seed(seed + 1)`` (the global RNG) before each reset; we reset the same modules when given
  them as stages, with our own seeded streams. With resets that do not draw random numbers the two agree
  exactly; with PyTorch's default (random) resets they follow the same trend.
"""
from __future__ import annotations

import logging
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers.evaluation import deletion_curve, randomization_test
from interp_helpers.methods import gradient

quantus = pytest.importorskip("quantus", reason="quantus is a test-only dependency (pip install -e .[test])")

N, C, H, W = 3, 3, 12, 12
PIXELS_PER_STEP = 4
STEPS = H * W // PIXELS_PER_STEP  # 36


@pytest.fixture(autouse=True)
def _quiet_quantus():
    logging.getLogger().setLevel(logging.WARNING)  # Quantus logs every softmax it adds at INFO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # called inside fork_rng by the tests: the global state is restored
    model = nn.Sequential(
        nn.Conv2d(C, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5),
    )
    with torch.no_grad():  # "trained" batch-norm statistics, so that resetting them changes something
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.3, 0.3)
        model[7].weight.mul_(20.0)  # logits of a few units, so that probabilities move as pixels go
    return model.eval()


def _inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(N, C, H, W, generator=torch.Generator().manual_seed(seed))


def _pixel_map(seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((N, H, W))  # distinct values: no ties in either ranking


def _pixel_flipping(model, x, amap, target, baseline, **kwargs):
    metric = quantus.PixelFlipping(
        features_in_step=C * PIXELS_PER_STEP, perturb_baseline=baseline, abs=False, normalise=False,
        disable_warnings=True, display_progressbar=False, **kwargs,
    )
    a_batch = np.ascontiguousarray(np.broadcast_to(amap[:, None], (N, C, H, W)), dtype=np.float32)
    return np.asarray(metric(model=model, x_batch=x.numpy(), y_batch=target.numpy(), a_batch=a_batch,
                             channel_first=True, softmax=True, device="cpu"))


def test_deletion_equals_quantus_pixel_flipping_zero_baseline():
    with torch.random.fork_rng():
        model = _small_cnn()
    x, amap = _inputs(), _pixel_map()
    target = model(x).argmax(dim=1).detach()
    ours = deletion_curve(amap, model, x, target, steps=STEPS, baseline="zero")
    theirs = _pixel_flipping(model, x, amap, target, 0.0)
    assert theirs.shape == (N, STEPS)
    np.testing.assert_allclose(theirs, ours.scores[:, 1:], rtol=0, atol=1e-6)
    assert np.abs(np.diff(ours.scores, axis=1)).max() > 1e-3  # the curves do move: the check is not vacuous
    # Quantus's AUC, utils.calculate_auc: np.trapz(curve, dx=1). (return_auc_per_sample=True itself fails on
    # NumPy >= 2.4, which removed np.trapz; np.trapezoid is the same rule.)
    auc = np.trapezoid(theirs, dx=1, axis=1)
    np.testing.assert_allclose(ours.auc * STEPS, auc + (ours.scores[:, 0] + ours.scores[:, 1]) / 2, atol=1e-5)


def test_deletion_equals_quantus_black_baseline_as_a_per_image_minimum():
    with torch.random.fork_rng():
        model = _small_cnn()
    x, amap = _inputs(), _pixel_map()
    target = torch.tensor([0, 3, 4])
    black = x.amin(dim=(1, 2, 3), keepdim=True)  # Quantus's "black": the image's minimum over all channels
    ours = deletion_curve(amap, model, x, target, steps=STEPS, baseline=black)
    theirs = _pixel_flipping(model, x, amap, target, "black")
    np.testing.assert_allclose(theirs, ours.scores[:, 1:], rtol=0, atol=1e-6)
    zero = deletion_curve(amap, model, x, target, steps=STEPS, baseline="zero")
    assert np.abs(zero.scores - ours.scores).max() > 1e-3  # "black" is not our "zero"


class _FixedResetConv(nn.Conv2d):
    """A convolution whose ``reset_parameters`` draws from a private generator: the same values every time."""

    def reset_parameters(self) -> None:
        g = torch.Generator().manual_seed(self.weight.numel())
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=g) * 0.3)
            self.bias.copy_(torch.randn(self.bias.shape, generator=g) * 0.1)


class _FixedResetLinear(nn.Linear):
    def reset_parameters(self) -> None:
        g = torch.Generator().manual_seed(self.weight.numel())
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=g) * 0.3)
            self.bias.copy_(torch.randn(self.bias.shape, generator=g) * 0.1)


def _fixed_reset_cnn() -> nn.Module:
    model = nn.Sequential(
        _FixedResetConv(C, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        _FixedResetConv(6, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), _FixedResetLinear(24, 5),
    )
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # "trained" weights, different from what reset_parameters gives
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        model[1].running_mean.uniform_(-0.5, 0.5, generator=g)
        model[1].running_var.uniform_(0.5, 2.0, generator=g)
    return model.eval()


def _resettable_stages(model: nn.Module) -> OrderedDict:
    """What MPRT randomizes: every module with ``reset_parameters``, in registration order (shallow -> deep)."""
    return OrderedDict((q, q) for q, m in model.named_modules() if q and hasattr(m, "reset_parameters"))


def _explain_quantus(model, inputs, targets, **kwargs):
    x = torch.as_tensor(inputs, dtype=torch.float32)
    return gradient(model, x, torch.as_tensor(targets)).abs().sum(dim=1, keepdim=True).numpy()


def _mprt(model, x, target) -> dict[str, np.ndarray]:
    metric = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True, display_progressbar=False)
    with torch.random.fork_rng():  # MPRT seeds the global RNG
        scores = metric(model=model, x_batch=x.numpy(), y_batch=target.numpy(), a_batch=None,
                        explain_func=_explain_quantus, channel_first=True, device="cpu")
    return {k: np.asarray(v, dtype=float) for k, v in scores.items()}


def test_randomization_equals_quantus_mprt_with_deterministic_resets():
    model = _fixed_reset_cnn()
    x = _inputs()
    target = model(x).argmax(dim=1).detach()
    stages = _resettable_stages(model)
    assert list(stages) == ["0", "1", "3", "7"]  # conv, batch norm, conv, linear
    ours = randomization_test(gradient, model, x, target, stages=stages, seed=0)
    theirs = _mprt(model, x, target)
    assert list(theirs) == list(ours.steps) == ["original", "7", "3", "1", "0"]
    for k, step in enumerate(ours.steps):
        np.testing.assert_allclose(theirs[step], ours.spearman[k], atol=1e-9, err_msg=step)
    assert ours.spearman[-1].max() < 0.9  # randomizing does change the maps


def test_randomization_follows_quantus_mprt_trend_with_default_resets():
    with torch.random.fork_rng():
        model = _small_cnn(seed=3)
    x = _inputs()
    target = model(x).argmax(dim=1).detach()
    stages = _resettable_stages(model)
    ours = randomization_test(gradient, model, x, target, stages=stages, seed=0)
    theirs = _mprt(model, x, target)
    assert list(theirs) == list(ours.steps)
    ours_mean = ours.spearman.mean(axis=1)
    theirs_mean = np.array([theirs[s].mean() for s in ours.steps])
    # Both start at 1; in this small network resetting the logits layer alone already decorrelates the gradient
    # maps, and they stay decorrelated down the cascade: every later step is far below 1 for both ...
    assert ours_mean[0] == pytest.approx(1) and theirs_mean[0] == pytest.approx(1)
    assert ours_mean[1:].max() < 0.5 and theirs_mean[1:].max() < 0.5
    # ... and step by step the two agree within the spread that different random draws give
    # (different random resets, so not the same numbers).
    assert np.abs(ours_mean - theirs_mean).max() < 0.25, (ours_mean.round(3), theirs_mean.round(3))
