"""Tests for interp_helpers.attribution.layers: capture, rest of the network, separation, layer_activations.

The layer_activations tests moved here from tests/test_compare.py (metrics.depth re-exports the function).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from interp_helpers import memory
from interp_helpers.attribution.layers import (
    WHERE,
    capture,
    check_layer,
    check_separates,
    layer_activations,
    rest_of_network,
)
from interp_helpers.hooks import frozen_model, model_fingerprint
from interp_helpers.metrics.depth import layer_activations as depth_layer_activations


class _TwoStage(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stage1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.stage2 = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3, stride=2, padding=1))
        self.head = torch.nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage2(self.stage1(x)).mean(dim=(2, 3)))


class _Skip(nn.Module):
    """stage2 is bypassed by a skip connection."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Conv2d(3, 4, 3, padding=1)
        self.stage2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stage1(x)
        return self.head((self.stage2(h) + h).mean(dim=(2, 3)))


class _Counter(nn.Module):
    """Identity recording the batch size of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return x


# --------------------------------------------------------------------------- layer_activations (from test_compare)


def test_layer_activations_match_a_manual_forward_and_leave_the_model_as_found() -> None:
    torch.manual_seed(0)
    model = _TwoStage().train()
    model.head.weight.grad = torch.ones_like(model.head.weight)
    x = torch.randn(5, 3, 16, 16)
    acts = layer_activations(model, x, model.stage2, batch_size=2)
    with torch.no_grad():
        expected = model.stage2(model.stage1(x))
    assert acts.shape == (5, 6, 4, 4)
    torch.testing.assert_close(acts, expected)
    torch.testing.assert_close(layer_activations(model, x, model.stage1), model.stage1(x).detach())
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(model.head.weight.grad, torch.ones_like(model.head.weight))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert depth_layer_activations is layer_activations  # metrics.depth re-exports it


def test_layer_activations_refuses_a_layer_called_twice_and_restores_the_model() -> None:
    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = torch.nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(self.block(x)).mean(dim=(2, 3))

    model = Twice().train()
    with pytest.raises(ValueError, match="exactly once"):
        layer_activations(model, torch.randn(1, 3, 4, 4), model.block)
    assert model.training and not model.block._forward_hooks


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: layer_activations("model", torch.zeros(1, 3, 8, 8), None), TypeError, "model"),
        (lambda: layer_activations(_TwoStage(), torch.zeros(3, 8, 8), _TwoStage().stage1), ValueError, "inputs"),
        (lambda: layer_activations(_TwoStage(), torch.zeros(1, 3, 8, 8), None), TypeError, "layer"),
        (lambda: layer_activations(_TwoStage(), torch.zeros(1, 3, 8, 8), torch.nn.ReLU()), ValueError, "layer"),
        (lambda: layer_activations(_TwoStage(), torch.zeros(1, 3, 8, 8), "stage1"), TypeError, "layer"),
        (lambda: (lambda m: layer_activations(m, torch.zeros(1, 3, 8, 8), m.stage1, batch_size=0))(_TwoStage()),
         ValueError, "batch_size"),
    ],
)
def test_layer_activations_bad_arguments(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_layer_activations_default_batch_size_comes_from_the_memory_budget(monkeypatch) -> None:
    torch.manual_seed(0)
    counter = _Counter()
    model = nn.Sequential(counter, nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()
    x = torch.randn(7, 3, 8, 8)
    per_image = memory.BACKWARD_FACTOR * memory.saved_bytes_per_image(model, x)
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", int(3 * per_image))  # three images per pass
    counter.sizes.clear()
    acts = layer_activations(model, x, model[2])
    assert counter.sizes == [3, 3, 1]
    with torch.no_grad():
        torch.testing.assert_close(acts, model[2](model[1](x)))
    counter.sizes.clear()
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", 2**40)  # everything fits: at most N images per pass
    layer_activations(model, x, model[2])
    assert counter.sizes == [7]


def test_layer_activations_runs_where_the_model_is(fake_model_device) -> None:
    moves = fake_model_device
    model = _TwoStage()
    x = torch.randn(2, 3, 8, 8)
    acts = layer_activations(model, x, model.stage1, batch_size=1)
    assert (2, 3, 8, 8) in moves and acts.device == x.device


# --------------------------------------------------------------------------- check_layer


def test_check_layer() -> None:
    model = _TwoStage()
    assert check_layer(model.stage2[1], model) is model.stage2[1]
    assert check_layer(model, model) is model
    assert check_layer(None, model) is None
    assert WHERE == ("output", "input")
    with pytest.raises(TypeError, match="layer"):
        check_layer(None, model, required=True)
    with pytest.raises(TypeError, match="layer"):
        check_layer("stage1", model)
    with pytest.raises(ValueError, match="submodule"):
        check_layer(nn.ReLU(), model)
    with pytest.raises(ValueError, match="attribute_to"):
        check_layer(model.stage1, model, where="middle")
    with pytest.raises(ValueError, match="where"):
        check_layer(model.stage1, model, where="middle", name="where")
    with pytest.raises(TypeError, match="model"):
        check_layer(model.stage1, "model")


# --------------------------------------------------------------------------- capture and the rest of the network


@pytest.mark.parametrize("where", WHERE)
def test_capture_known_answers_and_stop(where: str) -> None:
    torch.manual_seed(0)
    counter = _Counter()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), counter, nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    x = torch.randn(5, 3, 5, 5)
    with torch.no_grad():
        pre = model[0](x)
        post = model[1](pre)
        logits = model(x)
    counter.sizes.clear()
    with frozen_model(model) as m:
        got = capture(m, m[1], x, where, batch_size=2)
        stopped = capture(m, m[1], x, where, batch_size=2, stop=True)
    expected = post if where == "output" else pre
    torch.testing.assert_close(got.activations, expected)
    torch.testing.assert_close(got.output, logits)
    torch.testing.assert_close(stopped.activations, expected)
    assert stopped.output is None
    assert counter.sizes == [2, 2, 1]  # only the run without stop reaches the part after the layer
    assert not any(mod._forward_hooks or mod._forward_pre_hooks for mod in model.modules())


def test_capture_refusals_leave_no_hook() -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.unused = nn.ReLU()
            self.split = nn.Identity()

        def forward(self, x: torch.Tensor):
            h = self.conv(x)
            return self.split((h, h)), h.mean(dim=(2, 3))  # a tuple output, and a layer returning a tuple

    w = Wrapper()
    x = torch.randn(2, 3, 4, 4)
    before = model_fingerprint(w)
    with frozen_model(w) as m:
        with pytest.raises(ValueError, match="called 0 times"):
            capture(m, m.unused, x)
        with pytest.raises(ValueError, match="called 0 times"):
            capture(m, m.unused, x, "input", stop=True)
        with pytest.raises(ValueError, match="single tensor"):
            capture(m, m.split, x)
        with pytest.raises(ValueError, match="one output row per image"):
            capture(m, m.conv, x)
        with pytest.raises(ValueError, match="where"):
            capture(m, m.conv, x, "middle")
    assert model_fingerprint(w) == before


def test_rest_of_network_runs_from_the_layer_on_with_one_dummy_image() -> None:
    torch.manual_seed(0)
    counter = _Counter()
    model = nn.Sequential(counter, nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.randn(6, 3, 4, 4)
    with frozen_model(model) as m:
        acts, logits = capture(m, m[2], x, "output")
        counter.sizes.clear()
        rest = rest_of_network(m, m[2], "output", torch.zeros_like(x[:1]))
        z = acts.clone().requires_grad_(True)
        with torch.enable_grad():
            out = rest(z)
            (grad,) = torch.autograd.grad(out[:, 1].sum(), z)
        check_separates(rest, acts, logits, m[2], 4)
        rest_in = rest_of_network(m, m[1], "input", torch.zeros_like(x[:1]))
        with torch.no_grad():
            again = rest_in(x)
    torch.testing.assert_close(out.detach(), logits)
    torch.testing.assert_close(grad, model[4].weight[1].detach().view(1, 4, 4, 4).expand(6, 4, 4, 4))
    torch.testing.assert_close(again, logits)
    assert counter.sizes == [1, 1, 1, 1]  # one dummy image per call: rest, two separation batches, rest_in
    torch.testing.assert_close(z.detach(), acts)  # the caller's tensor is never modified
    assert not any(mod._forward_hooks or mod._forward_pre_hooks for mod in model.modules())


def test_check_separates_refuses_a_bypassed_layer_and_rest_leaves_no_hook_on_error() -> None:
    torch.manual_seed(0)
    model = _Skip()
    before = model_fingerprint(model)
    x = torch.randn(3, 3, 5, 5)
    with frozen_model(model) as m:
        acts, logits = capture(m, m.stage2, x)
        rest = rest_of_network(m, m.stage2, "output", torch.zeros_like(x[:1]))
        with pytest.raises(ValueError, match="does not separate"):
            check_separates(rest, acts, logits, m.stage2, 2)
        with pytest.raises(ValueError, match="does not separate"):  # the model fails on the wrong shape
            check_separates(rest_of_network(m, m.stage1, "output", torch.zeros_like(x[:1])), acts[:, :2],
                            logits, m.stage1, 2)
        with pytest.raises(RuntimeError):
            rest(torch.zeros(2, 7, 5, 5))  # an error inside the model: the owned hook goes anyway
    assert model_fingerprint(model) == before
