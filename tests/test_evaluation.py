"""interp_helpers.evaluation: deletion/insertion curves (RISE) and cascading randomization (Adebayo et al.).

The curve tests use a model linear in a known set of pixels followed by a two-class softmax. Deleting
(inserting) pixel ``p`` changes the logit by exactly ``w_p * sum_c (x_cp - b_cp)``, so the signed
contribution map is the optimal ranking at every step: its deletion curve lies below every other ordering's
and the reversed ranking gives the highest. Scores along that path are known in closed form.
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

from interp_helpers.evaluation import (
    CurveResult,
    RandomizationResult,
    auc_table,
    cascade_stages,
    deletion_curve,
    insertion_curve,
    randomization_table,
    randomization_test,
)
from interp_helpers.methods import gradient, gradient_x_input

H = W = 12
C = 3


class PixelModel(nn.Module):
    """Two classes: logit_0 = 0, logit_1 = scale * sum_{c,p} w_p x_cp. Counts its forward passes."""

    def __init__(self, weights: torch.Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("w", weights.reshape(1, 1, *weights.shape[-2:]).double())
        self.scale = nn.Parameter(torch.tensor(float(scale), dtype=torch.float64))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        l1 = self.scale * (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(l1), l1], dim=1)


def _pixel_setup(n: int = 3, positive: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(H * W, dtype=torch.float64)
    w[torch.randperm(H * W, generator=g)[:20]] = torch.linspace(0.2, 1.0, 20, dtype=torch.float64)
    if positive:
        x = 0.5 + torch.rand(n, C, H, W, generator=g, dtype=torch.float64)
    else:
        x = torch.randn(n, C, H, W, generator=g, dtype=torch.float64) * 2.0
    return PixelModel(w.reshape(H, W), scale=0.1), x  # logits of a few units: probabilities not saturated


def _baseline(x: torch.Tensor, name: str, sigma: float = 5.0) -> torch.Tensor:
    """The baselines as RISE and the docstrings define them; "blur" is scipy's filter, cut at 3 sigma."""
    if name == "zero":
        return torch.zeros_like(x)
    if name == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    return torch.from_numpy(gaussian_filter(x.numpy(), (0, 0, sigma, sigma), mode="nearest", truncate=3.0))


def _contribution(model: PixelModel, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact per-channel contribution to logit_1 of moving each pixel from b to x."""
    return model.scale.detach() * model.w * (x - b)


def _p1(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.softmax(model(x), 1)[:, 1].detach().numpy()


def _random_map(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _snapshot(model: nn.Module) -> tuple:
    """Everything a helper must leave as found: modes, hooks, requires_grad, .grad and values."""
    modules = [(n, m.training, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
               for n, m in model.named_modules()]
    params = [(n, p.requires_grad, None if p.grad is None else (id(p.grad), float(p.grad.sum())),
               float(p.detach().double().sum())) for n, p in model.named_parameters()]
    return modules, params, {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: tuple, b: tuple) -> bool:
    return a[:2] == b[:2] and a[2].keys() == b[2].keys() and all(torch.equal(a[2][k], b[2][k]) for k in a[2])


# --------------------------------------------------------------------------- curves: known answers


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean"])
def test_oracle_beats_random_beats_inverted_signed(baseline):
    model, x = _pixel_setup()
    oracle = _contribution(model, x, _baseline(x, baseline, 2.0))
    kw = {"steps": 24, "baseline": baseline, "reduction": "sum", "blur_sigma": 2.0, "batch_size": 16}
    curves = {name: (deletion_curve(a, model, x, 1, **kw), insertion_curve(a, model, x, 1, **kw))
              for name, a in {"oracle": oracle, "random": _random_map(len(x)), "inverted": -oracle}.items()}
    (d_o, i_o), (d_r, i_r), (d_i, i_i) = curves["oracle"], curves["random"], curves["inverted"]
    # optimal at every step, the inverted oracle pessimal (linear model, monotone softmax)
    assert np.all(d_o.scores <= d_r.scores + 1e-12) and np.all(d_r.scores <= d_i.scores + 1e-12)
    assert np.all(i_o.scores >= i_r.scores - 1e-12) and np.all(i_r.scores >= i_i.scores - 1e-12)
    assert np.all(d_o.auc < d_r.auc - 0.02) and np.all(d_r.auc < d_i.auc - 0.02)
    assert np.all(i_o.auc > i_r.auc + 0.02) and np.all(i_r.auc > i_i.auc + 0.02)


def test_oracle_beats_random_beats_inverted_abs_sum():
    # positive inputs and weights, zero baseline: every contribution >= 0, so |a| ranks like the oracle
    model, x = _pixel_setup(positive=True)
    oracle = _contribution(model, x, torch.zeros_like(x))
    inverted = oracle.amax(dim=(1, 2, 3), keepdim=True) - oracle
    maps = {"oracle": oracle, "random": _random_map(len(x)), "inverted": inverted}
    d = {k: deletion_curve(a, model, x, 1, steps=24, baseline="zero").auc for k, a in maps.items()}
    i = {k: insertion_curve(a, model, x, 1, steps=24, baseline="zero").auc for k, a in maps.items()}
    assert np.all(d["oracle"] < d["random"]) and np.all(d["random"] < d["inverted"])
    assert np.all(i["oracle"] > i["random"]) and np.all(i["random"] > i["inverted"])


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_scores_follow_closed_form_along_oracle_path(kind):
    model, x = _pixel_setup(n=2)
    steps = 9
    contrib = _contribution(model, x, torch.zeros_like(x)).sum(dim=1).reshape(len(x), -1)  # per pixel
    fn = deletion_curve if kind == "deletion" else insertion_curve
    res = fn(contrib.reshape(len(x), H, W), model, x, 1, steps=steps, baseline="zero", reduction="sum")
    counts = np.round(np.linspace(0, 1, steps + 1) * H * W).astype(int)
    np.testing.assert_array_equal(res.fractions, counts / (H * W))
    ranked = torch.sort(contrib, dim=1, descending=True).values.numpy()
    cum = np.concatenate([np.zeros((len(x), 1)), np.cumsum(ranked, axis=1)], axis=1)[:, counts]
    logit = contrib.sum(dim=1).numpy()[:, None] - cum if kind == "deletion" else cum
    expected = 1.0 / (1.0 + np.exp(-logit))
    np.testing.assert_allclose(res.scores, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.auc, np.trapezoid(expected, counts / (H * W), axis=1), atol=1e-10)


@pytest.mark.parametrize("baseline", ["zero", "blur", "mean"])
def test_curve_endpoints_are_input_and_baseline(baseline):
    model, x = _pixel_setup()
    p_x, p_b = _p1(model, x), _p1(model, _baseline(x, baseline))  # "blur": scipy's gaussian_filter, sigma 5
    d = deletion_curve(_random_map(len(x)), model, x, 1, steps=5, baseline=baseline)
    i = insertion_curve(_random_map(len(x)), model, x, 1, steps=5, baseline=baseline)
    np.testing.assert_allclose(d.scores[:, 0], p_x, atol=1e-12)
    np.testing.assert_allclose(d.scores[:, -1], p_b, atol=1e-12)
    np.testing.assert_allclose(i.scores[:, 0], p_b, atol=1e-12)
    np.testing.assert_allclose(i.scores[:, -1], p_x, atol=1e-12)
    assert (d.kind, i.kind, d.baseline, i.baseline) == ("deletion", "insertion", baseline, baseline)


def test_blur_baseline_is_cut_at_three_sigma():
    # the blur baseline keeps the results of 0.3 (truncate=3.0), not scipy's default truncate=4.0
    model, x = _pixel_setup()
    i = insertion_curve(_random_map(len(x)), model, x, 1, steps=2, blur_sigma=2.0)
    wide = torch.from_numpy(gaussian_filter(x.numpy(), (0, 0, 2.0, 2.0), mode="nearest"))
    np.testing.assert_allclose(i.scores[:, 0], _p1(model, _baseline(x, "blur", 2.0)), atol=1e-12)
    assert np.abs(i.scores[:, 0] - _p1(model, wide)).max() > 1e-6


def test_defaults_follow_the_rise_protocol():
    # RISE's code deletes towards zeros and inserts onto a blurred copy; its auc() is
    # (sum - first/2 - last/2) / (n - 1), the trapezoid over equal steps
    model, x = _pixel_setup()
    d = deletion_curve(_random_map(len(x)), model, x, 1, steps=6)
    i = insertion_curve(_random_map(len(x)), model, x, 1, steps=6)
    assert (d.baseline, i.baseline, d.reduction) == ("zero", "blur", "abs_sum")
    np.testing.assert_allclose(d.scores[:, -1], _p1(model, torch.zeros_like(x)), atol=1e-12)
    np.testing.assert_allclose(i.scores[:, 0], _p1(model, _baseline(x, "blur")), atol=1e-12)
    for c in (d, i):  # H * W = 144 is a multiple of 6: equal steps
        rise = (c.scores.sum(axis=1) - c.scores[:, 0] / 2 - c.scores[:, -1] / 2) / (c.scores.shape[1] - 1)
        np.testing.assert_allclose(c.auc, rise, atol=1e-12)


def test_steps_as_fractions_refine_the_grid():
    # an even grid given as fractions is the int grid; an uneven one records the same points as the even grid
    # it contains, and its AUC is the trapezoid over the uneven fractions
    model, x = _pixel_setup()
    amap = _random_map(len(x))
    for fn in (deletion_curve, insertion_curve):
        even = fn(amap, model, x, 1, steps=6)
        same = fn(amap, model, x, 1, steps=np.linspace(0, 1, 7))
        np.testing.assert_array_equal(same.scores, even.scores)
        fine = fn(amap, model, x, 1, steps=[0, 1 / 72, 1 / 36, 1 / 12, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6, 1])
        np.testing.assert_allclose(fine.fractions, [0, 2 / 144, 4 / 144, 12 / 144, 1 / 6, 1 / 3, 1 / 2, 2 / 3,
                                                    5 / 6, 1], atol=1e-15)
        shared = [0, 4, 5, 6, 7, 8, 9]  # the fractions k / 6 in the fine grid
        np.testing.assert_allclose(fine.scores[:, shared], even.scores, atol=1e-12)
        trapezoid = np.trapezoid(fine.scores, fine.fractions, axis=1)
        np.testing.assert_allclose(fine.auc, trapezoid, atol=1e-12)
        assert np.abs(fine.auc - even.auc).max() > 1e-6  # the extra points do change the area


def test_ties_are_ranked_in_raster_order():
    # a constant map ranks nothing: pixels go row by row, so the curve is known in closed form
    model, x = _pixel_setup(n=2)
    res = deletion_curve(torch.ones(2, H, W), model, x, 1, steps=H, baseline="zero", reduction="sum")
    rows = _contribution(model, x, torch.zeros_like(x)).sum(dim=(1, 3)).numpy()  # (N, H): contribution of each row
    logit = rows.sum(axis=1, keepdims=True) - np.concatenate([np.zeros((2, 1)), np.cumsum(rows, axis=1)], axis=1)
    np.testing.assert_allclose(res.scores, 1.0 / (1.0 + np.exp(-logit)), atol=1e-12)


def test_deletion_is_insertion_of_the_reversed_ranking():
    model, x = _pixel_setup()
    attr = _random_map(len(x))
    d = deletion_curve(attr, model, x, 1, steps=24, baseline="mean", reduction="sum")
    i = insertion_curve(-attr, model, x, 1, steps=24, baseline="mean", reduction="sum")
    np.testing.assert_allclose(d.scores, i.scores[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(d.auc, i.auc, atol=1e-12)


def test_shapes_targets_and_map_layouts():
    model, x = _pixel_setup(n=3)
    attr = _random_map(3)
    res = deletion_curve(attr, model, x, [1, 0, 1], steps=7, baseline="mean")
    assert isinstance(res, CurveResult) and "deletion" in repr(res)
    assert res.fractions.shape == (8,) and res.scores.shape == (3, 8) and res.auc.shape == (3,)
    assert res.target.tolist() == [1, 0, 1]
    p0 = torch.softmax(model(x), 1).detach().numpy()[[0, 1, 2], [1, 0, 1]]
    np.testing.assert_allclose(res.scores[:, 0], p0, atol=1e-12)
    assert np.all((res.auc >= 0) & (res.auc <= 1))
    with pytest.raises(ValueError):
        res.scores[0, 0] = 1.0  # read-only
    single = insertion_curve(attr[:1], model, x[:1], torch.tensor(1), steps=7)
    assert single.scores.shape == (1, 8) and single.auc.shape == (1,)
    reduced = attr.abs().sum(dim=1)  # (N, C, H, W), (N, 1, H, W), (N, H, W) and an array rank the same pixels
    for layout in (reduced, reduced.unsqueeze(1), reduced.numpy()):
        np.testing.assert_array_equal(deletion_curve(layout, model, x, [1, 0, 1], steps=7, baseline="mean").scores,
                                      res.scores)


def test_batch_size_does_not_change_results_and_defaults_to_the_pixel_budget():
    model, x = _pixel_setup(n=3)
    attr = _random_map(3)
    ref = deletion_curve(attr, model, x, 1, steps=10, batch_size=1)
    for bs in (4, 7, 1000):
        model.calls = 0
        np.testing.assert_allclose(deletion_curve(attr, model, x, 1, steps=10, batch_size=bs).scores, ref.scores,
                                   atol=1e-12)
        assert model.calls == -(-33 // bs)  # 3 images x 11 steps
    model.calls = 0
    deletion_curve(attr, model, x, 1, steps=10)  # batch_rows(None): 8 * 224 * 224 pixels a pass, all 33 here
    assert model.calls == 1


def test_reductions_differ_for_signed_maps():
    model, x = _pixel_setup(n=2)
    oracle = _contribution(model, x, torch.zeros_like(x))
    signed = deletion_curve(-oracle, model, x, 1, steps=12, baseline="zero", reduction="sum")
    absolute = deletion_curve(-oracle, model, x, 1, steps=12, baseline="zero", reduction="abs_sum")
    assert np.all(absolute.auc < signed.auc)  # |-oracle| ranks the support pixels first again


def test_custom_tensor_baseline():
    model, x = _pixel_setup(n=2)
    b = torch.full((1, C, 1, 1), 0.25, dtype=torch.float64)
    res = insertion_curve(_random_map(2), model, x, 1, steps=4, baseline=b)
    np.testing.assert_allclose(res.scores[:, 0], _p1(model, b.expand_as(x)), atol=1e-12)
    assert res.baseline == "custom"


# --------------------------------------------------------------------------- curves: methods, devices, model state


def _fake_method(model, inputs, target, *, background, scale=1.0):
    """A method with data of its own; it refuses a target other than class indices on the inputs' device."""
    assert isinstance(target, torch.Tensor) and target.dtype == torch.long and target.device == inputs.device
    return scale * gradient(model, inputs, target) * (inputs - background.mean(dim=0, keepdim=True))


@pytest.mark.parametrize("fn", [deletion_curve, insertion_curve])
def test_a_method_gives_the_curve_of_its_map(fn):
    model, x = _pixel_setup(n=3)
    calls = []

    def method(m, inputs, target):
        calls.append((m, inputs.clone(), target.clone()))
        return gradient_x_input(m, inputs, target)

    amap = gradient_x_input(model, x, [1, 0, 1])
    from_map = fn(amap, model, x, [1, 0, 1], steps=8, baseline="mean")
    from_method = fn(method, SimpleNamespace(module=model, num_classes=2), x, [1, 0, 1], steps=8, baseline="mean")
    np.testing.assert_array_equal(from_method.scores, from_map.scores)
    assert len(calls) == 1  # called once, with the plain module, the inputs and the classes as a long tensor
    m, inputs, t = calls[0]
    assert m is model and torch.equal(inputs, x) and t.dtype == torch.long and t.tolist() == [1, 0, 1]
    bg = _random_map(4, seed=5)
    bound = functools.partial(_fake_method, background=bg, scale=2.0)
    direct = _fake_method(model, x, torch.ones(3, dtype=torch.long), background=bg, scale=2.0)
    np.testing.assert_array_equal(fn(bound, model, x, 1, steps=8).scores, fn(direct, model, x, 1, steps=8).scores)


def test_curves_leave_the_model_as_found_also_on_error_and_name_bad_maps():
    model, x = _pixel_setup(n=2)
    model.train()
    model.scale.grad = torch.ones_like(model.scale)
    before = _snapshot(model)
    deletion_curve(gradient_x_input, model, x, 1, steps=4)
    insertion_curve(_random_map(2), model, x, 1, steps=4)
    assert _same(_snapshot(model), before)
    with pytest.raises(ValueError, match="target"):
        deletion_curve(_random_map(2), model, x, 5, steps=4)  # 2 classes: found at the first forward pass
    with pytest.raises(ValueError, match=r"method\(model, inputs, target\).*shape"):
        deletion_curve(lambda m, i, t: i[:, :, :5], model, x, 1, steps=4)
    with pytest.raises(ValueError, match=r"method\(model, inputs, target\).*NaN"):
        deletion_curve(lambda m, i, t: i * float("nan"), model, x, 1, steps=4)
    with pytest.raises(TypeError, match=r"method\(model, inputs, target\).*str"):
        deletion_curve(lambda m, i, t: "map", model, x, 1, steps=4)
    calls = []
    with pytest.raises(ValueError, match="baseline"):  # arguments are checked before the method runs
        deletion_curve(lambda m, i, t: calls.append(1), model, x, 1, baseline="black")
    assert not calls
    assert _same(_snapshot(model), before)


def test_curves_run_on_the_model_device(fake_model_device):
    model, x = _pixel_setup(n=2)
    seen = []

    def method(m, inputs, target):
        seen.append(inputs.shape)
        return gradient(m, inputs, target)

    res = deletion_curve(method, model, x, 1, steps=3, batch_size=4)
    assert tuple(x.shape) in fake_model_device  # the inputs went to the model's device before the method ran
    assert seen == [x.shape] and isinstance(res.scores, np.ndarray)
    np.testing.assert_allclose(res.scores, deletion_curve(gradient(model, x, 1), model, x, 1, steps=3).scores)


def test_curves_accept_a_loaded_model_like_object():
    model, x = _pixel_setup(n=2)
    wrapped = SimpleNamespace(module=model, num_classes=2)
    np.testing.assert_array_equal(deletion_curve(_random_map(2), wrapped, x, 1, steps=4).scores,
                                  deletion_curve(_random_map(2), model, x, 1, steps=4).scores)
    with pytest.raises(ValueError, match="target"):
        deletion_curve(_random_map(2), wrapped, x, 2, steps=4)  # checked up front against num_classes


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": True}, "steps"), ({"steps": "10"}, "steps"),
    ({"steps": [0.0, 0.5]}, "steps"), ({"steps": [0.1, 1.0]}, "steps"), ({"steps": [0.0, 0.5, 0.5, 1.0]}, "steps"),
    ({"steps": [0.0]}, "steps"), ({"steps": [[0.0, 1.0]]}, "steps"), ({"steps": ["a", "b"]}, "steps"),
    ({"batch_size": 0}, "batch_size"), ({"baseline": "black"}, "baseline"),
    ({"baseline": torch.zeros(5, 5, dtype=torch.float64)}, "baseline"),
    ({"baseline": torch.zeros(1, C, 1, 1, dtype=torch.long)}, "baseline"), ({"reduction": "max"}, "reduction"),
    ({"baseline": "blur", "blur_sigma": 0.0}, "blur_sigma"), ({"baseline": "blur", "blur_sigma": -1.0}, "blur_sigma"),
    ({"baseline": "blur", "blur_sigma": float("nan")}, "blur_sigma"),
])
def test_bad_keyword_arguments_raise_naming_them(kwargs, match):
    model, x = _pixel_setup(n=2)
    for fn in (deletion_curve, insertion_curve):
        with pytest.raises(ValueError, match=match):
            fn(_random_map(2), model, x, 1, **kwargs)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda a, m, x: deletion_curve(a[:1], m, x, 1), ValueError, "method.*shape"),
    (lambda a, m, x: deletion_curve(a[:, :, :5], m, x, 1), ValueError, "method.*shape"),
    (lambda a, m, x: deletion_curve(a[:, :2], m, x, 1), ValueError, "method.*shape"),
    (lambda a, m, x: deletion_curve(a.masked_fill(a > 0.5, float("nan")), m, x, 1), ValueError, "method.*NaN"),
    (lambda a, m, x: deletion_curve([[0.0]], m, x, 1), TypeError, "method.*list"),
    (lambda a, m, x: deletion_curve(a, m, x[0], 1), ValueError, "inputs"),
    (lambda a, m, x: deletion_curve(a, m, x.long(), 1), ValueError, "inputs"),
    (lambda a, m, x: deletion_curve(a, m, x, [1, 1, 1]), ValueError, "target"),
    (lambda a, m, x: deletion_curve(a, m, x, -1), ValueError, "target"),
    (lambda a, m, x: deletion_curve(a, m, x, 0.5), ValueError, "target"),
    (lambda a, m, x: deletion_curve(a, m, x, lambda z: z[:, 1]), TypeError, "target must be class indices"),
    (lambda a, m, x: deletion_curve(a, "resnet", x, 1), TypeError, "model"),
    (lambda a, m, x: deletion_curve(m, x, 1, a), TypeError, "model"),  # the 0.3 argument order
])
def test_bad_positional_arguments_raise_naming_them(call, error, match):
    model, x = _pixel_setup(n=2)
    with pytest.raises(error, match=match):
        call(_random_map(2), model, x)


def test_auc_table_mean_std_and_bad_input():
    model, x = _pixel_setup(n=3)
    curves = {k: deletion_curve(_random_map(3, seed=s), model, x, 1, steps=6) for s, k in enumerate("ab")}
    table = auc_table(curves, ["p", "q", "r"])
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["p", "q", "r", "mean", "std"]
    np.testing.assert_allclose(table.loc["a", ["p", "q", "r"]].to_numpy(float), curves["a"].auc)
    np.testing.assert_allclose(table["mean"], [curves[k].auc.mean() for k in "ab"])
    np.testing.assert_allclose(table["std"], [curves[k].auc.std(ddof=1) for k in "ab"])
    assert list(auc_table(curves).columns[:3]) == ["image 0", "image 1", "image 2"]
    one = deletion_curve(_random_map(1), model, x[:1], 1, steps=6)
    assert np.isnan(auc_table({"one": one})["std"].iloc[0])
    with pytest.raises(ValueError, match="image_names"):
        auc_table(curves, ["p"])
    with pytest.raises(ValueError, match="curves"):
        auc_table({"a": curves["a"], "c": one})
    with pytest.raises(ValueError, match="curves"):
        auc_table({})
    with pytest.raises(TypeError, match=r"curves\['a'\]"):
        auc_table({"a": "not a result"})


# --------------------------------------------------------------------------- cascading randomization


def _small_cnn(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # builds the "trained" model; the global state is restored
        model = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 8, 3, padding=1), act1=nn.ReLU(), conv2=nn.Conv2d(8, 8, 3, padding=1),
            bn=nn.BatchNorm2d(8), act2=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(8, 4),
        )).double().eval()
        with torch.no_grad():  # batch norm away from its initial state, as after training
            model.bn.weight.uniform_(0.5, 1.5)
            model.bn.bias.uniform_(-0.2, 0.2)
            model.bn.running_mean.uniform_(-0.1, 0.1)
            model.bn.running_var.uniform_(0.5, 2.0)
    return model


def _cnn_inputs(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def _input_only(model, inputs, target):
    """An 'explanation' that ignores the model: it must fail the sanity check."""
    return inputs.abs()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_randomization_gradient_drifts_and_the_original_is_untouched():
    model = _small_cnn()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    before = _snapshot(model)
    res = randomization_test(gradient, model, _cnn_inputs(), [0, 3], seed=0)
    assert isinstance(res, RandomizationResult) and "RandomizationResult" in repr(res)
    assert res.steps == ("original", "fc", "bn", "conv2", "conv1")  # parameter-free children skipped
    assert res.spearman.shape == res.ssim.shape == (5, 2) and res.maps.shape == (5, 2, 16, 16)
    assert res.target.tolist() == [0, 3]
    np.testing.assert_allclose(res.spearman[0], 1.0)
    np.testing.assert_allclose(res.ssim[0], 1.0)
    np.testing.assert_allclose(res.maps.reshape(5, 2, -1).max(axis=2), 1.0, atol=1e-6)  # each map scaled to 1
    assert np.all(res.spearman[1:] < 0.99) and np.all(res.ssim[1:] < 0.99)
    assert np.all(np.abs(res.spearman[-1]) < 0.5) and np.all(np.abs(res.ssim[-1]) < 0.5)
    assert _same(_snapshot(model), before)


class _Gain(nn.Module):
    """A per-element gain without reset_parameters: re-initialised from N(0, 1 / fan_in)."""

    def __init__(self, gain: torch.Tensor) -> None:
        super().__init__()
        self.gain = nn.Parameter(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def test_randomization_similarity_decreases_stage_by_stage():
    # f(x) = fc(g * x): the gradient is g * w_target, g spanning three orders of magnitude, w O(1) noise.
    # Randomizing fc keeps |g| (the ranking stays largely intact); randomizing g as well leaves nothing.
    g = torch.Generator().manual_seed(0)
    gain = torch.logspace(-3, 0, 3 * 16 * 16, dtype=torch.float64)[torch.randperm(768, generator=g)]
    fc = nn.Linear(768, 4).double()
    with torch.no_grad():
        fc.weight.copy_(torch.randn(4, 768, generator=g, dtype=torch.float64))
    model = nn.Sequential(OrderedDict(gain=_Gain(gain.view(1, 3, 16, 16)), flat=nn.Flatten(), fc=fc))
    res = randomization_test(gradient, model, _cnn_inputs(), [0, 1])
    assert res.steps == ("original", "fc", "gain")
    assert np.all(res.spearman[1] > 0.5) and np.all(res.spearman[1] < 0.99)
    assert np.all(np.abs(res.spearman[2]) < 0.2)
    assert np.all(res.ssim[0] > res.ssim[1]) and np.all(res.ssim[1] > res.ssim[2])


def test_a_model_independent_explanation_fails_the_check():
    res = randomization_test(_input_only, _small_cnn(), _cnn_inputs(), 1)
    np.testing.assert_allclose(res.spearman, 1.0)
    np.testing.assert_allclose(res.ssim, 1.0)


def test_randomization_cascades_from_the_top_on_a_copy():
    model = _small_cnn()
    original = _state(model)
    seen = []

    def spy(m, inputs, target):
        seen.append((m, _state(m)))
        return gradient(m, inputs, target)

    res = randomization_test(spy, model, _cnn_inputs(), 0)
    order = ["fc", "bn", "conv2", "conv1"]  # deep -> shallow
    assert len(seen) == len(res.steps) == 5
    for step, (m, state) in enumerate(seen):
        assert m is not model
        for stage in order:
            keys = [k for k in original if k.startswith(stage + ".") and "num_batches" not in k]
            assert all(torch.equal(original[k], state[k]) for k in keys) == (stage not in order[:step]), (step, stage)


def test_randomization_is_seeded_and_leaves_the_global_rng_alone():
    model, x = _small_cnn(), _cnn_inputs()
    rng = torch.get_rng_state()
    a = randomization_test(gradient, model, x, 2, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(123)
    b = randomization_test(gradient, model, x, 2, seed=5)
    c = randomization_test(gradient, model, x, 2, seed=6)
    np.testing.assert_array_equal(a.spearman, b.spearman)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.allclose(a.spearman[1:], c.spearman[1:])
    assert randomization_test(gradient, model, x, 2, seed=None).steps == a.steps


def test_randomization_stage_mapping_and_modules_without_reset_parameters():
    cnn = _small_cnn()
    model = nn.Sequential(OrderedDict(gain=_Gain(torch.linspace(0.5, 1.5, 3, dtype=torch.float64).view(1, 3, 1, 1)),
                                      body=cnn)).eval()
    gain0 = model.gain.gain.detach().clone()
    seen = []

    def spy(m, inputs, target):
        seen.append(m.get_submodule("gain").gain.detach().clone())
        return gradient(m, inputs, target)

    stages = OrderedDict(gain=model.gain, pool="body.pool", head="body.fc")  # a module or a qualified name
    res = randomization_test(spy, model, _cnn_inputs(), 0, stages=stages)
    assert res.steps == ("original", "head", "gain")  # "pool" has no parameters
    assert torch.equal(seen[0], gain0) and torch.equal(seen[1], gain0) and not torch.allclose(seen[2], gain0)
    assert torch.equal(model.gain.gain, gain0)
    # a LoadedModel-like object: cascade_stages(model) is the default; conv2 and bn join "early"
    wrapped = SimpleNamespace(module=cnn, stages=OrderedDict(early=cnn.conv1, late=cnn.fc), num_classes=4)
    assert cascade_stages(wrapped) == OrderedDict(early=("conv1", "conv2", "bn"), late=("fc",))
    assert randomization_test(gradient, wrapped, _cnn_inputs(), 0).steps == ("original", "late", "early")


def _staged_model() -> SimpleNamespace:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        module = nn.Sequential(OrderedDict(
            conv0=nn.Conv2d(3, 4, 3, padding=1), bn0=nn.BatchNorm2d(4),
            block1=nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()), trans=nn.Conv2d(4, 6, 1),
            block2=nn.Sequential(nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1)), bn_head=nn.BatchNorm2d(6),
            pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(6, 3),
        )).double().eval()
        with torch.no_grad():
            for bn in (module.bn0, module.bn_head):
                bn.weight.uniform_(0.5, 1.5)
                bn.running_var.uniform_(0.5, 2.0)
    return SimpleNamespace(module=module, stages=OrderedDict(b1=module.block1, b2=module.block2), num_classes=3)


def test_cascade_stages_cover_every_parameter():
    model = _staged_model()
    groups = cascade_stages(model)
    assert groups == OrderedDict(
        stem=("conv0", "bn0"), b1=("block1.0", "trans"), b2=("block2.1",), head=("bn_head",), logits=("fc",))
    owners = {n.rsplit(".", 1)[0] for n, _ in model.module.named_parameters()}
    assert {q for qs in groups.values() for q in qs} == owners
    assert cascade_stages(model.module, OrderedDict(b1="block1", b2="block2")) == groups  # names work too
    with pytest.raises(ValueError, match="stages"):
        cascade_stages(model.module)  # a plain module has no .stages
    with pytest.raises(ValueError, match="stages"):
        cascade_stages(model, OrderedDict())
    with pytest.raises(ValueError, match="no parameters"):
        cascade_stages(nn.Sequential(nn.ReLU()), {"a": "0"})


def test_the_default_cascade_randomizes_everything_by_the_end():
    model = _staged_model()
    original = _state(model.module)
    seen = []

    def spy(m, inputs, target):
        seen.append(_state(m))
        return gradient(m, inputs, target)

    res = randomization_test(spy, model, _cnn_inputs(), [0, 2])
    assert res.steps == ("original", "logits", "head", "b2", "b1", "stem")
    weights = [k for k in original if k.endswith("weight")]
    assert all(torch.equal(seen[0][k], original[k]) for k in weights)
    assert not any(torch.equal(seen[-1][k], original[k]) for k in weights)
    stages = OrderedDict(body=[model.module.conv0, "block1.0"], top=("fc", "bn_head"))  # randomized together
    assert randomization_test(gradient, model, _cnn_inputs(), 0, stages=stages).steps == ("original", "top", "body")


def test_randomization_accepts_a_partial_method_with_keyword_data():
    model, x = _small_cnn(), _cnn_inputs()
    bg = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    res = randomization_test(functools.partial(_fake_method, background=bg, scale=3.0), model, x, [0, 3], seed=1)
    ref = randomization_test(lambda m, i, t: _fake_method(m, i, t, background=bg, scale=3.0), model, x, [0, 3], seed=1)
    np.testing.assert_array_equal(res.spearman, ref.spearman)
    np.testing.assert_array_equal(res.maps, ref.maps)
    assert np.all(res.spearman[-1] < 0.99)  # the bound method does depend on the model


def test_randomization_runs_on_the_model_device(fake_model_device):
    x = _cnn_inputs()
    res = randomization_test(gradient, _small_cnn(), x, 1)
    assert tuple(x.shape) in fake_model_device and isinstance(res.spearman, np.ndarray)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda m, x: randomization_test("gradient", m, x, 0), TypeError, "method"),
    (lambda m, x: randomization_test(lambda m, i, t: i[:, :, :4], m, x, 0), ValueError, "method"),
    (lambda m, x: randomization_test(lambda m, i, t: "map", m, x, 0), TypeError, "method"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(other=nn.Linear(2, 2))), ValueError,
     "stages"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(x="body.nothing")), ValueError, "stages"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(x="")), ValueError, "whole model"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(x=3)), TypeError, "stages"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(x=[])), ValueError, "empty"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=OrderedDict(pool=m.pool)), ValueError, "stages"),
    (lambda m, x: randomization_test(gradient, m, x, 0, stages=[m.fc]), TypeError, "stages"),
    (lambda m, x: randomization_test(gradient, m, x, 0, seed=-1), ValueError, "seed"),
    (lambda m, x: randomization_test(gradient, m, x, [0, 1, 2]), ValueError, "target"),
    (lambda m, x: randomization_test(gradient, m, x[0], 0), ValueError, "inputs"),
])
def test_randomization_bad_arguments_raise_naming_them(call, error, match):
    model = _small_cnn()
    before = _snapshot(model)
    with pytest.raises(error, match=match):
        call(model, _cnn_inputs())
    assert _same(_snapshot(model), before)


def test_randomization_on_maps_smaller_than_the_ssim_window():
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    res = randomization_test(gradient, _small_cnn(), x, 0)  # SSIM on 6 x 6 maps: a 5 x 5 window
    np.testing.assert_allclose(res.ssim[0], 1.0)
    assert res.maps.shape == (5, 1, 6, 6)


def test_randomization_table():
    x = _cnn_inputs(3)
    results = {"grad": randomization_test(gradient, _small_cnn(), x, 0),
               "input": randomization_test(_input_only, _small_cnn(), x, 0)}
    table = randomization_table(results, "ssim")
    assert list(table.columns) == list(results["grad"].steps)
    np.testing.assert_allclose(table.loc["grad"], results["grad"].ssim.mean(axis=1))
    np.testing.assert_allclose(table.loc["input"], 1.0)
    flat = randomization_test(lambda m, i, t: torch.ones_like(i), _small_cnn(), x, 0)  # constant maps: NaN
    assert randomization_table({"flat": flat}).isna().all().all()
    with pytest.raises(ValueError, match="metric"):
        randomization_table(results, "pearson")
    with pytest.raises(ValueError, match="steps"):
        randomization_table({"grad": results["grad"], "other": randomization_test(gradient, _staged_model(), x, 0)})
