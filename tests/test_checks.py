"""The shared bookkeeping every helper relies on: argument checks, state restoration, seeded noise."""
import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers.validation import check_inputs, check_targets

from interp_helpers.hooks import OwnedHooks, frozen_model, model_fingerprint
from interp_helpers._rng import derive_seed, generator
from interp_helpers.validation import check_seed


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(2))


def test_frozen_model_restores_everything_even_on_error():
    model = _model()
    model(torch.zeros(1, 3, 5, 5))
    model.train()
    model[1].eval()  # mixed modes must come back exactly
    model[0].weight.requires_grad_(False)
    model[4].weight.grad = torch.ones_like(model[4].weight)
    before = model_fingerprint(model)
    with pytest.raises(KeyboardInterrupt):
        with frozen_model(model) as m, OwnedHooks() as hooks:
            assert not any(p.requires_grad for p in m.parameters())
            assert not any(x.training for x in m.modules())
            hooks.forward(m[0], lambda *a: None)
            hooks.forward_pre(m[2], lambda *a: None)
            assert model_fingerprint(model)["hooks"] != before["hooks"]
            raise KeyboardInterrupt
    assert model_fingerprint(model) == before
    assert model[1].training is False and model[2].training is True


def test_owned_hooks_remove_only_their_own():
    model = _model()
    model(torch.zeros(1, 3, 5, 5))
    theirs = model[0].register_forward_hook(lambda *a: None)  # a user's hook: must survive
    before = model_fingerprint(model)
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        with OwnedHooks() as hooks:
            hooks.forward(model[0], lambda m, args, out: seen.append(out.shape))
            model(torch.zeros(1, 3, 5, 5))
            raise RuntimeError("boom")
    assert seen and model_fingerprint(model) == before
    theirs.remove()


def test_frozen_model_leaves_hooks_to_their_owner():
    model = _model()
    model(torch.zeros(1, 3, 5, 5))
    with frozen_model(model) as m:
        handle = m[0].register_forward_hook(lambda *a: None)
    assert len(model[0]._forward_hooks) == 1  # not silently deleted from a private dict
    handle.remove()


def test_fingerprint_detects_changes():
    model = _model()
    model(torch.zeros(1, 3, 5, 5))
    before = model_fingerprint(model)
    handle = model[0].register_forward_hook(lambda *a: None)
    assert model_fingerprint(model) != before
    handle.remove()
    model.eval()
    assert model_fingerprint(model) != before


def test_check_targets_and_inputs():
    assert check_targets(3, 2, 10).tolist() == [3, 3]
    assert check_targets([1, 2], 2, 10).tolist() == [1, 2]
    assert check_targets(torch.tensor([4]), 1, 10).tolist() == [4]
    assert check_targets(np.array([0, 9]), 2, 10).tolist() == [0, 9]
    for bad in (10, -1, [1], [1, 2, 3], [0.5, 1.0], True, "a"):
        with pytest.raises(ValueError, match="target"):
            check_targets(bad, 2, 10)
    check_inputs(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        check_inputs(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        check_inputs(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="floating"):
        check_inputs(torch.zeros(1, 1, 2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="inputs"):
        check_inputs(np.zeros((1, 1, 2, 2)))


def test_counter_based_generators_are_reproducible_and_independent():
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = torch.randn(5, generator=generator(7, 0, 3))
    b = torch.randn(5, generator=generator(7, 0, 3))
    c = torch.randn(5, generator=generator(7, 0, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert torch.equal(torch.get_rng_state(), state) and (np.random.get_state()[1] == np_state).all()
    assert check_seed(5) == 5 and isinstance(check_seed(None), int)
    for bad in (-1, 1.5, "x", True):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)


def test_check_labelled_names_the_argument_and_the_bad_entry():
    from interp_helpers.validation import check_labelled

    good = {"a": 1, "b": 2}
    assert check_labelled(good, "curves", int) is good
    with pytest.raises(ValueError, match=r"curves must be a non-empty mapping label -> int"):
        check_labelled({}, "curves", int)
    with pytest.raises(ValueError, match=r"curves must be a non-empty mapping"):
        check_labelled([1, 2], "curves", int)
    with pytest.raises(ValueError, match=r"curves\['b'\] must be a int, got str"):
        check_labelled({"a": 1, "b": "x"}, "curves", int)
