"""Batch sizes from a memory budget (``interp_helpers.memory``): known answers, per-architecture costs,
and the attribution helpers' defaults staying inside the budget on every model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import interp_helpers as ih
from interp_helpers import memory
import interp_helpers.attribution.expected_gradients as expgrad
from interp_helpers.attribution.core import resolve_batch_size
from interp_helpers.hooks import model_fingerprint


class Counting(nn.Module):
    """ReLU then sigmoid, each saving its own output for backward; counts forward calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.relu, self.sigmoid = nn.ReLU(), nn.Sigmoid()
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        self.calls += 1
        h = self.sigmoid(self.relu(x))
        return self.head(h.mean(dim=(2, 3)))


def test_saved_bytes_known_answer_and_cache():
    """ReLU and sigmoid each save one image-sized tensor: 2 x 3 x 8 x 8 x 4 bytes; the mean saves only shapes."""
    model = Counting()
    x = torch.rand(5, 3, 8, 8)
    before = model_fingerprint(model)
    saved = memory.saved_bytes_per_image(model, x)
    # + the (1, 3) input of the linear layer is not saved: its weight does not need a gradient here
    assert saved == 2 * 3 * 8 * 8 * 4
    assert memory.saved_bytes_per_image(model, torch.rand(2, 3, 16, 16)) == 4 * saved  # scales with pixels
    assert memory.saved_bytes_per_image(Counting().double(), x.double()) == 2 * saved  # and with the dtype's size
    calls = model.calls
    assert memory.saved_bytes_per_image(model, x) == saved and model.calls == calls  # cached
    assert model_fingerprint(model) == before


def test_batch_size_from_the_budget():
    model = Counting()
    x = torch.rand(1, 3, 8, 8)
    per_image = memory.BACKWARD_FACTOR * memory.saved_bytes_per_image(model, x)
    assert memory.memory_batch_size(model, x, budget_bytes=int(10 * per_image)) == 10
    assert memory.memory_batch_size(model, x, budget_bytes=int(10 * per_image) - 1) == 9
    assert memory.memory_batch_size(model, x, budget_bytes=1) == 1  # never fewer than one
    assert memory.memory_batch_size(model, x, budget_bytes=int(10 * per_image), cap=4) == 4
    for bad, name in [({"budget_bytes": 0}, "budget_bytes"), ({"budget_bytes": 1.5}, "budget_bytes"),
                      ({"cap": 0}, "cap"), ({"cap": True}, "cap")]:
        with pytest.raises(ValueError, match=name):
            memory.memory_batch_size(model, x, **bad)
    with pytest.raises(ValueError, match="inputs"):
        memory.memory_batch_size(model, torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="model"):
        memory.memory_batch_size("resnet50", x)


def test_expensive_models_get_smaller_batches_within_the_budget():
    """The per-architecture cost: DenseNet121 saves the most per image, so it gets the smallest batches."""
    x = torch.zeros(1, 3, 224, 224)
    sizes, saved = {}, {}
    for name in ih.MODEL_NAMES:
        model = ih.load_model(name, weights=None, device="cpu")
        saved[name] = memory.saved_bytes_per_image(model, x)
        sizes[name] = memory.memory_batch_size(model, x)
        assert sizes[name] * memory.BACKWARD_FACTOR * saved[name] <= memory.PASS_BUDGET_BYTES
        assert 60 * 2**20 < saved[name] < 200 * 2**20  # tens of MB per 224 x 224 image
    assert saved["densenet121"] > saved["resnet50"] > saved["efficientnet_lite0"]
    assert sizes["densenet121"] < sizes["resnet50"] <= sizes["efficientnet_lite0"]
    # expected gradients' old default (50 draws per pass) would not fit on DenseNet121
    assert 50 * memory.BACKWARD_FACTOR * saved["densenet121"] > 4 * memory.PASS_BUDGET_BYTES


def test_attribution_defaults_use_the_budget_and_results_do_not_change(monkeypatch):
    model = Counting().eval()
    x = torch.rand(2, 3, 8, 8)
    background = torch.rand(4, 3, 8, 8)
    per_image = memory.BACKWARD_FACTOR * memory.saved_bytes_per_image(model, x)
    monkeypatch.setattr(memory, "PASS_BUDGET_BYTES", int(3 * per_image))  # three images per pass
    seen = []
    real = expgrad._accumulate

    def spy(run, acts, base, targets, index, t, n_samples, batch_size, *args, **kwargs):
        seen.append(batch_size)
        return real(run, acts, base, targets, index, t, n_samples, batch_size, *args, **kwargs)

    monkeypatch.setattr(expgrad, "_accumulate", spy)
    default = ih.expected_gradients(model, x, 0, background=background, n_samples=10, seed=0)
    explicit = ih.expected_gradients(model, x, 0, background=background, n_samples=10, seed=0, batch_size=20)
    assert seen == [3, 20]
    torch.testing.assert_close(default, explicit)
    assert resolve_batch_size(None, model, x, 100) == 3
    assert resolve_batch_size(None, model, x, 2) == 2
    torch.testing.assert_close(ih.smoothgrad(model, x, 1, n_samples=7, seed=0),
                               ih.smoothgrad(model, x, 1, n_samples=7, seed=0, batch_size=14))
