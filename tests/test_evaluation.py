"""Known-answer tests for interp_helpers.metrics.faithfulness (deletion/insertion) and .sanity (randomization test).

The curve tests use a model that is linear in a known set of pixels followed by a
two-class softmax. Deleting (inserting) pixel ``p`` then changes the logit by
exactly ``w_p * sum_c (x_cp - b_cp)``, so the signed contribution map is the
*optimal* ranking at every step: its deletion curve lies below every other
ordering's, and the reversed ranking gives the highest curve. Scores along the
oracle path are known in closed form.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from interp_helpers.hooks import model_fingerprint
from interp_helpers.metrics.faithfulness import (
    CurveResult,
    auc_table,
    deletion_curve,
    insertion_curve,
    make_baseline,
)
from interp_helpers.metrics.sanity import (
    RandomizationResult,
    cascade_stages,
    randomization_table,
    randomization_test,
)

H = W = 12
C = 3


class PixelModel(nn.Module):
    """Two classes: logit_0 = 0, logit_1 = scale * sum_{c,p} w_p x_cp. Only pixels with w_p != 0 matter."""

    def __init__(self, weights: torch.Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("w", weights.reshape(1, 1, *weights.shape[-2:]).double())
        self.scale = nn.Parameter(torch.tensor(float(scale), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1 = self.scale * (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(l1), l1], dim=1)


def _pixel_setup(n: int = 3, positive: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(H * W, dtype=torch.float64)
    support = torch.randperm(H * W, generator=g)[:20]
    w[support] = torch.linspace(0.2, 1.0, 20, dtype=torch.float64)
    w = w.reshape(H, W)
    if positive:
        x = 0.5 + torch.rand(n, C, H, W, generator=g, dtype=torch.float64)
    else:
        x = torch.randn(n, C, H, W, generator=g, dtype=torch.float64) * 2.0
    model = PixelModel(w, scale=0.1)  # logits of a few units: probabilities not saturated
    return model, x, w


def _contribution(model: PixelModel, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact per-channel contribution to logit_1 of moving each pixel from b to x."""
    return model.scale.detach() * model.w * (x - b)


def _random_map(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean"])
def test_oracle_beats_random_beats_inverted_signed(baseline):
    model, x, _ = _pixel_setup()
    b = make_baseline(x, baseline, blur_sigma=2.0)
    oracle = _contribution(model, x, b)
    kw = dict(steps=24, baseline=baseline, reduction="sum", blur_sigma=2.0, batch_size=16)
    aucs = {}
    for name, attr in {"oracle": oracle, "random": _random_map(len(x)), "inverted": -oracle}.items():
        aucs[name] = (deletion_curve(model, x, 1, attr, **kw), insertion_curve(model, x, 1, attr, **kw))
    (d_o, i_o), (d_r, i_r), (d_i, i_i) = aucs["oracle"], aucs["random"], aucs["inverted"]
    # The oracle is optimal at every step, the inverted oracle pessimal (linear model, monotone softmax).
    assert np.all(d_o.scores <= d_r.scores + 1e-12) and np.all(d_r.scores <= d_i.scores + 1e-12)
    assert np.all(i_o.scores >= i_r.scores - 1e-12) and np.all(i_r.scores >= i_i.scores - 1e-12)
    assert np.all(d_o.auc < d_r.auc - 0.02) and np.all(d_r.auc < d_i.auc - 0.02)
    assert np.all(i_o.auc > i_r.auc + 0.02) and np.all(i_r.auc > i_i.auc + 0.02)


def test_oracle_beats_random_beats_inverted_abs_sum():
    # Positive inputs, positive weights, zero baseline: every contribution is >= 0,
    # so |attribution| ranks like the signed oracle and the inversion is max - oracle.
    model, x, _ = _pixel_setup(positive=True)
    oracle = _contribution(model, x, torch.zeros_like(x))
    assert (oracle >= 0).all()
    inverted = oracle.amax(dim=(1, 2, 3), keepdim=True) - oracle
    kw = dict(steps=24, baseline="zero")
    d = {k: deletion_curve(model, x, 1, a, **kw).auc for k, a in
         {"oracle": oracle, "random": _random_map(len(x)), "inverted": inverted}.items()}
    i = {k: insertion_curve(model, x, 1, a, **kw).auc for k, a in
         {"oracle": oracle, "random": _random_map(len(x)), "inverted": inverted}.items()}
    assert np.all(d["oracle"] < d["random"]) and np.all(d["random"] < d["inverted"])
    assert np.all(i["oracle"] > i["random"]) and np.all(i["random"] > i["inverted"])


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_scores_follow_closed_form_along_oracle_path(kind):
    model, x, _ = _pixel_setup(n=2)
    steps = 9
    b = torch.zeros_like(x)
    contrib = _contribution(model, x, b).sum(dim=1).reshape(len(x), -1)  # per pixel
    fn = deletion_curve if kind == "deletion" else insertion_curve
    res = fn(model, x, 1, contrib.reshape(len(x), H, W), steps=steps, baseline="zero", reduction="sum")
    counts = np.round(np.linspace(0, 1, steps + 1) * H * W).astype(int)
    np.testing.assert_array_equal(res.fractions, counts / (H * W))
    sorted_c = torch.sort(contrib, dim=1, descending=True).values.numpy()
    cum = np.concatenate([np.zeros((len(x), 1)), np.cumsum(sorted_c, axis=1)], axis=1)[:, counts]
    full = contrib.sum(dim=1).numpy()[:, None]
    logit = full - cum if kind == "deletion" else cum
    expected = 1.0 / (1.0 + np.exp(-logit))
    np.testing.assert_allclose(res.scores, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.auc, np.trapezoid(expected, counts / (H * W), axis=1), atol=1e-10)


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean"])
def test_curve_endpoints_are_input_and_baseline(baseline):
    model, x, _ = _pixel_setup()
    attr = _random_map(len(x))
    p_x = torch.softmax(model(x), 1)[:, 1].detach().numpy()
    p_b = torch.softmax(model(make_baseline(x, baseline)), 1)[:, 1].detach().numpy()
    d = deletion_curve(model, x, 1, attr, steps=5, baseline=baseline)
    i = insertion_curve(model, x, 1, attr, steps=5, baseline=baseline)
    np.testing.assert_allclose(d.scores[:, 0], p_x, atol=1e-12)
    np.testing.assert_allclose(d.scores[:, -1], p_b, atol=1e-12)
    np.testing.assert_allclose(i.scores[:, 0], p_b, atol=1e-12)
    np.testing.assert_allclose(i.scores[:, -1], p_x, atol=1e-12)
    assert d.baseline == baseline and d.kind == "deletion" and i.kind == "insertion"


def test_defaults_follow_the_rise_protocol():
    # RISE's reference code deletes towards zeros and inserts onto a blurred copy; its auc() is
    # (sum - first/2 - last/2) / (n - 1), the trapezoid over equal steps.
    model, x, _ = _pixel_setup()
    attr = _random_map(len(x))
    d = deletion_curve(model, x, 1, attr, steps=6)
    i = insertion_curve(model, x, 1, attr, steps=6)
    assert (d.baseline, i.baseline) == ("zero", "blur")
    np.testing.assert_allclose(d.scores[:, -1], torch.softmax(model(torch.zeros_like(x)), 1)[:, 1].detach(), atol=1e-12)
    np.testing.assert_allclose(i.scores[:, 0], torch.softmax(model(make_baseline(x, "blur")), 1)[:, 1].detach(),
                               atol=1e-12)
    for c in (d, i):  # H * W = 144 is a multiple of 6: equal steps
        rise = (c.scores.sum(axis=1) - c.scores[:, 0] / 2 - c.scores[:, -1] / 2) / (c.scores.shape[1] - 1)
        np.testing.assert_allclose(c.auc, rise, atol=1e-12)


def test_deletion_is_insertion_of_the_reversed_ranking():
    # Deleting the top-k pixels of a ranking leaves exactly the image obtained by
    # inserting the bottom H*W-k pixels: the curves are mirror images.
    model, x, _ = _pixel_setup()
    attr = _random_map(len(x))
    d = deletion_curve(model, x, 1, attr, steps=24, baseline="mean", reduction="sum")
    i = insertion_curve(model, x, 1, -attr, steps=24, baseline="mean", reduction="sum")
    np.testing.assert_allclose(d.scores, i.scores[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(d.auc, i.auc, atol=1e-12)


def test_shapes_targets_and_map_layouts():
    model, x, _ = _pixel_setup(n=3)
    attr = _random_map(3)
    res = deletion_curve(model, x, [1, 0, 1], attr, steps=7, baseline="mean")
    assert isinstance(res, CurveResult)
    assert res.fractions.shape == (8,) and res.scores.shape == (3, 8) and res.auc.shape == (3,)
    assert res.target.tolist() == [1, 0, 1]
    p0 = torch.softmax(model(x), 1).detach().numpy()[[0, 1, 2], [1, 0, 1]]
    np.testing.assert_allclose(res.scores[:, 0], p0, atol=1e-12)
    assert np.all((res.auc >= 0) & (res.auc <= 1))
    with pytest.raises(ValueError):
        res.scores[0, 0] = 1.0  # read-only
    single = insertion_curve(model, x[:1], 1, attr[:1], steps=7)
    assert single.scores.shape == (1, 8) and single.auc.shape == (1,)
    # (N, C, H, W), (N, 1, H, W), (N, H, W) and a numpy array rank the same pixels.
    reduced = attr.abs().sum(dim=1)
    for layout in (reduced, reduced.unsqueeze(1), reduced.numpy()):
        other = deletion_curve(model, x, [1, 0, 1], layout, steps=7, baseline="mean")
        np.testing.assert_array_equal(other.scores, res.scores)


def test_batch_size_does_not_change_results():
    model, x, _ = _pixel_setup(n=3)
    attr = _random_map(3)
    ref = deletion_curve(model, x, 1, attr, steps=10, batch_size=1)
    for bs in (4, 7, 1000):
        np.testing.assert_allclose(deletion_curve(model, x, 1, attr, steps=10, batch_size=bs).scores, ref.scores,
                                   atol=1e-12)


def test_reductions_differ_for_signed_maps():
    model, x, _ = _pixel_setup(n=2)
    oracle = _contribution(model, x, torch.zeros_like(x))
    signed = deletion_curve(model, x, 1, -oracle, steps=12, baseline="zero", reduction="sum")
    absolute = deletion_curve(model, x, 1, -oracle, steps=12, baseline="zero", reduction="abs_sum")
    assert np.all(absolute.auc < signed.auc)  # |-oracle| ranks the support pixels first again


# --------------------------------------------------------------------------- baselines


def test_baselines_match_definitions_and_scipy():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, C, 20, 17, generator=g, dtype=torch.float64)
    assert torch.equal(make_baseline(x, "zero"), torch.zeros_like(x))
    mean = make_baseline(x, "mean")
    np.testing.assert_allclose(mean.numpy(), np.broadcast_to(x.numpy().mean(axis=(2, 3), keepdims=True), x.shape))
    for sigma in (0.7, 2.0, 5.0):  # 5.0: the kernel is wider than the image
        blurred = make_baseline(x, "blur", blur_sigma=sigma).numpy()
        expected = gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest", truncate=3.0)
        np.testing.assert_allclose(blurred, expected, atol=1e-12)
    const = torch.full((1, C, 8, 8), 0.3, dtype=torch.float64)
    np.testing.assert_allclose(make_baseline(const, "blur").numpy(), 0.3, atol=1e-12)
    custom = make_baseline(x, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(1, 3, 1, 1))
    assert custom.shape == x.shape and torch.all(custom[:, 2] == 3.0)
    assert not torch.equal(make_baseline(x, "blur"), x)


def test_custom_tensor_baseline_in_curve():
    model, x, _ = _pixel_setup(n=2)
    b = torch.full((1, C, 1, 1), 0.25, dtype=torch.float64)
    res = insertion_curve(model, x, 1, _random_map(2), steps=4, baseline=b)
    p_b = torch.softmax(model(b.expand_as(x)), 1)[:, 1].detach().numpy()
    np.testing.assert_allclose(res.scores[:, 0], p_b, atol=1e-12)
    assert res.baseline == "custom"


# --------------------------------------------------------------------------- explain callables and devices


def _gradient_x_input(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _gradient(model, inputs, target) * inputs


def _fake_method(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, *, background: torch.Tensor,
                 scale: float = 1.0) -> torch.Tensor:
    """A stand-in attribution method in the package's protocol: its own data (background) as keywords.

    It refuses a target that is not what the metrics promise to pass on: a long tensor of class
    indices on the inputs' (= the model's) device.
    """
    assert isinstance(target, torch.Tensor) and target.dtype == torch.long and target.device == inputs.device
    return scale * _gradient(model, inputs, target) * (inputs - background.mean(dim=0, keepdim=True))


@pytest.mark.parametrize("fn", [deletion_curve, insertion_curve])
def test_callable_attribution_gives_the_curve_of_its_map(fn):
    model, x, _ = _pixel_setup(n=3)
    calls = []

    def explain(m, inputs, target):
        calls.append((m, inputs.clone(), target.clone()))
        return _gradient_x_input(m, inputs, target)

    target = torch.tensor([1, 0, 1])
    amap = _gradient_x_input(model, x, target)
    kw = dict(steps=8, baseline="mean")
    from_map = fn(model, x, [1, 0, 1], amap, **kw)
    from_callable = fn(SimpleNamespace(module=model, num_classes=2), x, [1, 0, 1], explain, **kw)
    np.testing.assert_array_equal(from_callable.scores, from_map.scores)
    np.testing.assert_array_equal(from_callable.auc, from_map.auc)
    # called once, with the plain module, the inputs and the validated target (long tensor of indices)
    assert len(calls) == 1
    m, inputs, t = calls[0]
    assert m is model and torch.equal(inputs, x)
    assert t.dtype == torch.long and t.tolist() == [1, 0, 1]
    # a method with data of its own, bound with functools.partial
    bg = _random_map(4, seed=5)
    bound = functools.partial(_fake_method, background=bg, scale=2.0)
    np.testing.assert_array_equal(fn(model, x, 1, bound, **kw).scores,
                                  fn(model, x, 1, _fake_method(model, x, torch.ones(3, dtype=torch.long),
                                                               background=bg, scale=2.0), **kw).scores)


def test_callable_attribution_leaves_model_untouched_and_bad_maps_are_named():
    model, x, _ = _pixel_setup(n=2)
    _perturbed_state(model)
    before = model_fingerprint(model)
    deletion_curve(model, x, 1, _gradient_x_input, steps=4)
    assert model_fingerprint(model) == before
    with pytest.raises(ValueError, match=r"attribution\(model, inputs, target\)"):
        deletion_curve(model, x, 1, lambda m, i, t: i[:, :, :5], steps=4)
    with pytest.raises(ValueError, match=r"attribution\(model, inputs, target\)"):
        deletion_curve(model, x, 1, lambda m, i, t: i * float("nan"), steps=4)
    with pytest.raises(TypeError, match=r"attribution\(model, inputs, target\)"):
        deletion_curve(model, x, 1, lambda m, i, t: "map", steps=4)
    calls = []
    with pytest.raises(ValueError, match="baseline"):  # arguments are checked before the callable runs
        deletion_curve(model, x, 1, lambda m, i, t: calls.append(1), baseline="black")
    assert not calls
    assert model_fingerprint(model) == before


class _MetaProbe(nn.Module):
    """A model whose parameters live on PyTorch's "meta" device: a device other than the inputs' without a GPU.

    The test machines have no GPU, so this stands in for "a model on another device". Meta
    tensors have shapes but no values, so the model cannot compute real logits: its forward
    records the device of the batch it receives and returns fixed CPU logits ``(0, 1)`` built
    from the batch size alone. What this checks honestly is the device *policy*: the inputs --
    and what an explain callable receives -- are moved to the model's device whatever device
    they came from, and the results come back as NumPy arrays. The numerics are the CPU tests'
    job (on CUDA the same code runs with real values).
    """

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2, device="meta")
        self.seen: list[torch.device] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(x.shape[0], 2)


def test_curves_run_on_the_model_device_and_return_numpy():
    model = _MetaProbe()
    x = torch.rand(2, C, H, W, dtype=torch.float64)  # CPU inputs, model elsewhere
    received = []

    def explain(m, inputs, target):
        received.append((inputs.device, target.device, target.dtype))
        return torch.rand(2, C, H, W, generator=torch.Generator().manual_seed(0))  # a CPU map

    expected = np.exp(1.0) / (1.0 + np.exp(1.0))
    for fn, baseline in ((deletion_curve, "zero"), (insertion_curve, "mean")):
        model.seen.clear()
        for attribution in (_random_map(2), explain):
            res = fn(model, x, 1, attribution, steps=3, baseline=baseline, batch_size=3)
            assert isinstance(res.scores, np.ndarray) and isinstance(res.auc, np.ndarray)
            np.testing.assert_allclose(res.scores, expected, rtol=0, atol=1e-12)
        assert model.seen and all(d.type == "meta" for d in model.seen)
    assert received == [(torch.device("meta"), torch.device("meta"), torch.long)] * 2
    assert model.layer.weight.device.type == "meta" and x.device.type == "cpu"


# --------------------------------------------------------------------------- model state and bad input


def _perturbed_state(model: nn.Module) -> None:
    model.train()
    model.scale.grad = torch.ones_like(model.scale)


def test_curves_leave_model_untouched_also_on_error():
    model, x, _ = _pixel_setup(n=2)
    _perturbed_state(model)
    before = model_fingerprint(model)
    deletion_curve(model, x, 1, _random_map(2), steps=4)
    insertion_curve(model, x, 1, _random_map(2), steps=4)
    assert model_fingerprint(model) == before
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, 5, _random_map(2), steps=4)  # only 2 classes, found after the forward pass
    assert model_fingerprint(model) == before


def test_curves_accept_loaded_model_like_object():
    model, x, _ = _pixel_setup(n=2)
    wrapped = SimpleNamespace(module=model, num_classes=2)
    a = deletion_curve(wrapped, x, 1, _random_map(2), steps=4)
    b = deletion_curve(model, x, 1, _random_map(2), steps=4)
    np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(ValueError, match="target"):
        deletion_curve(wrapped, x, 2, _random_map(2), steps=4)  # checked up front via num_classes


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(steps=True), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(baseline="black"), "baseline"),
        (dict(baseline=torch.zeros(5, 5, dtype=torch.float64)), "baseline"),
        (dict(reduction="max"), "reduction"),
        (dict(baseline="blur", blur_sigma=-1.0), "blur_sigma"),
        (dict(baseline="blur", blur_sigma=float("nan")), "blur_sigma"),
    ],
)
def test_bad_keyword_arguments_raise_naming_them(kwargs, match):
    model, x, _ = _pixel_setup(n=2)
    for fn in (deletion_curve, insertion_curve):
        with pytest.raises(ValueError, match=match):
            fn(model, x, 1, _random_map(2), **kwargs)


def test_bad_positional_arguments_raise_naming_them():
    model, x, _ = _pixel_setup(n=2)
    attr = _random_map(2)
    with pytest.raises(ValueError, match="attribution"):
        deletion_curve(model, x, 1, attr[:1])
    with pytest.raises(ValueError, match="attribution"):
        deletion_curve(model, x, 1, attr[:, :, :5])
    with pytest.raises(ValueError, match="attribution"):
        deletion_curve(model, x, 1, attr.masked_fill(attr > 0.5, float("nan")))
    with pytest.raises(TypeError, match="attribution"):
        deletion_curve(model, x, 1, [[0.0]])
    with pytest.raises(ValueError, match="inputs"):
        deletion_curve(model, x[0], 1, attr)
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, [1, 1, 1], attr)
    with pytest.raises(ValueError, match="target"):
        deletion_curve(model, x, -1, attr)
    with pytest.raises(TypeError, match="model"):
        deletion_curve("resnet", x, 1, attr)


# --------------------------------------------------------------------------- randomization test


def _small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)  # test-only: builds the "trained" model
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1),
            act1=nn.ReLU(),
            conv2=nn.Conv2d(8, 8, 3, padding=1),
            bn=nn.BatchNorm2d(8),
            act2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(8, 4),
        )
    ).double().eval()
    with torch.no_grad():  # batch norm away from its initial state, as after training
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model


def _cnn_inputs(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def _gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = inputs.detach().clone().requires_grad_(True)
    out = model(x).gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(out, x)
    return grad


def _input_only(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """An 'explanation' that ignores the model entirely -- it must fail the sanity check."""
    return inputs.abs()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_randomization_gradient_drifts_and_original_untouched():
    model = _small_cnn()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    before, state = model_fingerprint(model), _state(model)
    x = _cnn_inputs()
    res = randomization_test(model, x, [0, 3], _gradient, seed=0)
    assert isinstance(res, RandomizationResult)
    assert res.steps == ("original", "fc", "bn", "conv2", "conv1")  # parameter-free stages skipped
    assert res.spearman.shape == res.ssim.shape == (5, 2)
    assert res.maps.shape == (5, 2, 16, 16)
    np.testing.assert_allclose(res.spearman[0], 1.0)
    np.testing.assert_allclose(res.ssim[0], 1.0)
    # Each randomized model gives a different map; with everything randomized the
    # gradient is close to unrelated to the original (on this 8-channel net the head
    # alone already carries most of the structure, so the fall is abrupt).
    assert np.all(res.spearman[1:] < 0.99) and np.all(res.ssim[1:] < 0.99)
    assert np.all(np.abs(res.spearman[-1]) < 0.5) and np.all(np.abs(res.ssim[-1]) < 0.5)
    assert model_fingerprint(model) == before
    after = _state(model)
    assert all(torch.equal(state[k], after[k]) for k in state)


class _Gain(nn.Module):
    """Per-input-element gain without reset_parameters (re-initialised by the seeded normal init)."""

    def __init__(self, gain: torch.Tensor) -> None:
        super().__init__()
        self.gain = nn.Parameter(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def test_randomization_similarity_decreases_stage_by_stage():
    # f(x) = fc(g * x): the gradient is g * w_target. g spans three orders of magnitude,
    # w is O(1) noise. Randomizing fc keeps |g| -- the ranking stays largely intact --
    # and randomizing g as well leaves nothing of the original map.
    g = torch.Generator().manual_seed(0)
    gain = torch.logspace(-3, 0, 3 * 16 * 16, dtype=torch.float64)[torch.randperm(768, generator=g)]
    torch.manual_seed(0)  # test-only: builds the "trained" model
    model = nn.Sequential(
        OrderedDict(gain=_Gain(gain.view(1, 3, 16, 16)), flat=nn.Flatten(), fc=nn.Linear(768, 4).double())
    )
    res = randomization_test(model, _cnn_inputs(), [0, 1], _gradient)
    assert res.steps == ("original", "fc", "gain")
    rho = res.spearman
    assert np.all(rho[1] > 0.5) and np.all(rho[1] < 0.99)
    assert np.all(np.abs(rho[2]) < 0.2)
    assert np.all(res.ssim[0] > res.ssim[1]) and np.all(res.ssim[1] > res.ssim[2])


def test_randomization_model_independent_explanation_fails_the_check():
    model = _small_cnn()
    res = randomization_test(model, _cnn_inputs(), 1, _input_only)
    np.testing.assert_allclose(res.spearman, 1.0)
    np.testing.assert_allclose(res.ssim, 1.0)


def test_randomization_cascades_from_the_top_on_a_copy():
    model = _small_cnn()
    original = _state(model)
    seen: list[tuple[nn.Module, dict[str, torch.Tensor]]] = []

    def spy(m, inputs, target):
        seen.append((m, _state(m)))
        return _gradient(m, inputs, target)

    res = randomization_test(model, _cnn_inputs(), 0, spy)
    order = ["fc", "bn", "conv2", "conv1"]  # deep -> shallow
    assert len(seen) == len(res.steps) == 5
    for step, (m, state) in enumerate(seen):
        assert m is not model
        randomized = set(order[:step])
        for stage in order:
            keys = [k for k in original if k.startswith(stage + ".") and "num_batches" not in k]
            same = all(torch.equal(original[k], state[k]) for k in keys)
            assert same == (stage not in randomized), (step, stage)


def test_randomization_seeded_and_global_rng_untouched():
    model = _small_cnn()
    x = _cnn_inputs()
    rng = torch.get_rng_state()
    a = randomization_test(model, x, 2, _gradient, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(123)
    b = randomization_test(model, x, 2, _gradient, seed=5)
    c = randomization_test(model, x, 2, _gradient, seed=6)
    np.testing.assert_array_equal(a.spearman, b.spearman)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.allclose(a.spearman[1:], c.spearman[1:])


class _NoReset(nn.Module):
    """A layer whose parameter has no reset_parameters: randomized by the seeded normal init."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, 3, dtype=torch.float64).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def test_randomization_stage_mapping_and_modules_without_reset_parameters():
    cnn = _small_cnn()
    model = nn.Sequential(OrderedDict(gain=_NoReset(), body=cnn)).eval()
    gain0 = model.gain.gain.detach().clone()
    seen = []

    def spy(m, inputs, target):
        seen.append(m.get_submodule("gain").gain.detach().clone())
        return _gradient(m, inputs, target)

    stages = OrderedDict(gain=model.gain, pool="body.pool", head="body.fc")  # module or qualified name
    res = randomization_test(model, _cnn_inputs(), 0, spy, stages=stages)
    assert res.steps == ("original", "head", "gain")  # "pool" has no parameters
    assert torch.equal(seen[0], gain0) and torch.equal(seen[1], gain0)
    assert not torch.allclose(seen[2], gain0)
    assert torch.equal(model.gain.gain, gain0)
    # LoadedModel-like objects: cascade_stages(model) is the default; conv2 and bn join "early"
    wrapped = SimpleNamespace(module=cnn, stages=OrderedDict(early=cnn.conv1, late=cnn.fc), num_classes=4)
    assert cascade_stages(wrapped) == OrderedDict(early=("conv1", "conv2", "bn"), late=("fc",))
    assert randomization_test(wrapped, _cnn_inputs(), 0, _gradient).steps == ("original", "late", "early")


def _staged_model() -> SimpleNamespace:
    torch.manual_seed(1)  # test-only: builds the "trained" model
    module = nn.Sequential(
        OrderedDict(
            conv0=nn.Conv2d(3, 4, 3, padding=1),
            bn0=nn.BatchNorm2d(4),
            block1=nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
            trans=nn.Conv2d(4, 6, 1),
            block2=nn.Sequential(nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1)),
            bn_head=nn.BatchNorm2d(6),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(6, 3),
        )
    ).double().eval()
    with torch.no_grad():
        for bn in (module.bn0, module.bn_head):
            bn.weight.uniform_(0.5, 1.5)
            bn.running_var.uniform_(0.5, 2.0)
    return SimpleNamespace(module=module, stages=OrderedDict(b1=module.block1, b2=module.block2), num_classes=3)


def test_cascade_stages_cover_every_parameter():
    model = _staged_model()
    groups = cascade_stages(model)
    assert groups == OrderedDict(
        stem=("conv0", "bn0"), b1=("block1.0", "trans"), b2=("block2.1",), head=("bn_head",), logits=("fc",)
    )
    covered = {q for qs in groups.values() for q in qs}
    owners = {n.rsplit(".", 1)[0] for n, _ in model.module.named_parameters()}
    assert covered == owners
    with pytest.raises(ValueError, match="stages"):
        cascade_stages(model.module)  # a plain module has no .stages
    with pytest.raises(ValueError, match="stages"):
        cascade_stages(model, OrderedDict())


def test_randomization_default_cascade_randomizes_everything_by_the_end():
    model = _staged_model()
    original = _state(model.module)
    seen = []

    def spy(m, inputs, target):
        seen.append(_state(m))
        return _gradient(m, inputs, target)

    res = randomization_test(model, _cnn_inputs(), [0, 2], spy)
    assert res.steps == ("original", "logits", "head", "b2", "b1", "stem")
    weights = [k for k in original if k.endswith("weight")]
    assert all(torch.equal(seen[0][k], original[k]) for k in weights)
    assert not any(torch.equal(seen[-1][k], original[k]) for k in weights)
    # a list of modules/names is randomized as one stage
    res2 = randomization_test(model, _cnn_inputs(), 0, _gradient,
                              stages=OrderedDict(body=[model.module.conv0, "block1.0"], top=("fc", "bn_head")))
    assert res2.steps == ("original", "top", "body")


def test_randomization_to_frame():
    res = randomization_test(_small_cnn(), _cnn_inputs(3), 0, _gradient)
    df = res.to_frame()
    assert list(df.columns) == ["step_index", "step", "image", "spearman", "ssim"]
    assert len(df) == 5 * 3
    np.testing.assert_allclose(df.loc[df.step == "original", "spearman"], 1.0)
    np.testing.assert_array_equal(df.spearman.to_numpy().reshape(5, 3), res.spearman)


def test_randomization_bad_arguments_raise_naming_them():
    model = _small_cnn()
    x = _cnn_inputs()
    before = model_fingerprint(model)
    with pytest.raises(TypeError, match="explain"):
        randomization_test(model, x, 0, "gradient")
    with pytest.raises(ValueError, match="explain"):
        randomization_test(model, x, 0, lambda m, i, t: i[:, :, :4])
    with pytest.raises(ValueError, match="explain"):
        randomization_test(model, x, 0, lambda m, i, t: "map")
    with pytest.raises(ValueError, match="stages"):
        randomization_test(model, x, 0, _gradient, stages=OrderedDict(other=nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="stages"):
        randomization_test(model, x, 0, _gradient, stages=OrderedDict(x="body.nothing"))
    with pytest.raises(ValueError, match="stages"):
        randomization_test(model, x, 0, _gradient, stages=OrderedDict(pool=model.pool))
    with pytest.raises(ValueError, match="stages"):
        randomization_test(model, x, 0, _gradient, stages=[model.fc])
    with pytest.raises(ValueError, match="seed"):
        randomization_test(model, x, 0, _gradient, seed=-1)
    with pytest.raises(ValueError, match="target"):
        randomization_test(model, x, [0, 1, 2], _gradient)
    with pytest.raises(ValueError, match="inputs"):
        randomization_test(model, x[0], 0, _gradient)
    assert model_fingerprint(model) == before


def test_randomization_accepts_a_partial_method_with_keyword_data():
    model = _small_cnn()
    x = _cnn_inputs()
    bg = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    bound = functools.partial(_fake_method, background=bg, scale=3.0)
    res = randomization_test(model, x, [0, 3], bound, seed=1)
    ref = randomization_test(model, x, [0, 3], lambda m, i, t: _fake_method(m, i, t, background=bg, scale=3.0),
                             seed=1)
    assert res.steps == ref.steps == ("original", "fc", "bn", "conv2", "conv1")
    np.testing.assert_array_equal(res.spearman, ref.spearman)
    np.testing.assert_array_equal(res.maps, ref.maps)
    assert np.all(res.spearman[-1] < 0.99)  # the bound method does depend on the model


def test_randomization_runs_on_the_model_device():
    # See _MetaProbe: the explain callable gets inputs and target on the model's device, the
    # cascade re-initialises parameters there (drawn on the CPU: meta has no generator), and
    # the result is NumPy.
    model = _MetaProbe()
    x = torch.rand(2, C, H, W, dtype=torch.float64)
    received = []

    def explain(m, inputs, target):
        received.append((inputs.device.type, target.device.type, target.dtype, tuple(target.shape)))
        return x.abs()  # a CPU map, independent of the model

    res = randomization_test(model, x, 1, explain)
    assert res.steps == ("original", "layer")
    assert received == [("meta", "meta", torch.long, (2,))] * 2
    assert isinstance(res.spearman, np.ndarray)
    np.testing.assert_allclose(res.spearman, 1.0)


# --------------------------------------------------------------------------- tables


def test_auc_table_mean_std_and_bad_input():
    model, x, _ = _pixel_setup(n=3)
    curves = {k: deletion_curve(model, x, 1, _random_map(3, seed=s), steps=6) for s, k in enumerate(["a", "b"])}
    table = auc_table(curves, ["p", "q", "r"])
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["p", "q", "r", "mean", "std"]
    np.testing.assert_allclose(table.loc["a", ["p", "q", "r"]].to_numpy(float), curves["a"].auc)
    np.testing.assert_allclose(table["mean"], [curves[k].auc.mean() for k in "ab"])
    np.testing.assert_allclose(table["std"], [curves[k].auc.std(ddof=1) for k in "ab"])
    with pytest.raises(ValueError, match="image_names"):
        auc_table(curves, ["p"])
    with pytest.raises(ValueError, match="curves"):
        auc_table({"a": curves["a"], "c": deletion_curve(model, x[:1], 1, _random_map(1), steps=6)})
    with pytest.raises(ValueError, match="curves"):
        auc_table({})


def test_randomization_table():
    x = _cnn_inputs(3)
    results = {"grad": randomization_test(_small_cnn(), x, 0, _gradient),
               "input": randomization_test(_small_cnn(), x, 0, _input_only)}
    table = randomization_table(results, "ssim")
    assert list(table.columns) == list(results["grad"].steps)
    np.testing.assert_allclose(table.loc["grad"], results["grad"].ssim.mean(axis=1))
    np.testing.assert_allclose(table.loc["input"], 1.0)
    with pytest.raises(ValueError, match="metric"):
        randomization_table(results, "pearson")
    other = randomization_test(_staged_model(), x, 0, _gradient)
    with pytest.raises(ValueError, match="steps"):
        randomization_table({"grad": results["grad"], "other": other})


# --------------------------------------------------------------------------- plots (draw only what they are given)


def test_evaluation_plots_draw_results_and_check_arguments():
    import matplotlib.pyplot as plt

    from interp_helpers.plotting.evaluation import plot_cascade_maps, plot_curves, plot_randomization

    model, x, _ = _pixel_setup(n=2)
    curves = {k: deletion_curve(model, x, 1, _random_map(2, seed=s), steps=6) for s, k in enumerate(["a", "b"])}
    ax = plot_curves(curves, title="t")
    assert len(ax.lines) == 2 and "AUC" in ax.get_legend().get_texts()[0].get_text()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curves["a"].scores.mean(axis=0))
    with pytest.raises(ValueError, match="kind"):
        plot_curves({"d": curves["a"], "i": insertion_curve(model, x, 1, _random_map(2), steps=6)})
    with pytest.raises(ValueError, match="curves"):
        plot_curves({"a": "not a result"})

    results = {"grad": randomization_test(_small_cnn(), _cnn_inputs(), 0, _gradient),
               "input": randomization_test(_small_cnn(), _cnn_inputs(), 0, _input_only)}
    ax = plot_randomization(results, metric="ssim")
    assert len(ax.lines) >= 2
    with pytest.raises(ValueError, match="metric"):
        plot_randomization(results, metric="pearson")
    fig, axes = plot_cascade_maps(results, image=1, photo=np.zeros((16, 16, 3)))
    assert axes.shape == (2, 1 + len(results["grad"].steps))
    with pytest.raises(ValueError, match="image"):
        plot_cascade_maps(results, image=2)
    fig, axes = plot_cascade_maps(results, steps=["original", "conv1"])
    assert axes.shape == (2, 2)
    with pytest.raises(ValueError, match="steps"):
        plot_cascade_maps(results, steps=["original", "nope"])
    plt.close("all")
