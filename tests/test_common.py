"""Tests for interp_helpers._common: argument checks, seeds and generators, batch rows, the model's device and
frozen_model (the model left as found)."""
from __future__ import annotations

import inspect
import random
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from interp_helpers import _common
from interp_helpers._common import (
    BATCH_PIXELS,
    DEFAULT_SEED,
    as_module,
    as_tensor,
    batch_rows,
    check_ax,
    check_choice,
    check_flag,
    check_inputs,
    check_int,
    check_method,
    check_number,
    check_positive,
    check_seed,
    check_size,
    check_target,
    frozen_model,
    model_device,
    numpy_rng,
    torch_generator,
)


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(36, 2))


def _global_states() -> tuple:
    np_state = np.random.get_state()
    return torch.get_rng_state(), np_state[0], np_state[1].copy(), np_state[2:], random.getstate()


def _same_states(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2]) and a[3:] == b[3:]


# --------------------------------------------------------------------------- checks: known answers


def test_checks_return_the_checked_value() -> None:
    assert check_int(3, "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "index", minimum=0) == 0
    assert check_number(0.5, "level", 0.0, 1.0) == 0.5 and type(check_number(1, "level")) is float
    assert check_number(-1e9, "x") == -1e9  # unbounded by default
    assert check_number(0.0, "level", low=0.0) == 0.0 and check_number(1.0, "level", high=1.0) == 1.0  # closed
    assert check_choice("input", "attribute_to", ("output", "input")) == "input"
    x = torch.zeros(1, 3, 4, 4)
    assert check_inputs(x) is x and check_inputs(x.double(), "background") is not None
    assert check_seed(5) == 5 and check_seed(np.uint64(2**63 - 1)) == 2**63 - 1 and DEFAULT_SEED == 0


def test_check_seed_none_draws_fresh_os_entropy_and_leaves_global_rngs_alone() -> None:
    before = _global_states()
    seeds = {check_seed(None) for _ in range(5)}
    assert len(seeds) == 5 and all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)
    assert _same_states(before, _global_states())


X4 = torch.zeros(1, 3, 4, 4)
BAD_CALLS = {  # name -> (call, error, message)
    "check_int": [
        (lambda: check_int(0, "n_samples"), ValueError, r"n_samples must be an integer >= 1, got 0"),
        (lambda: check_int(-1, "sample_index", minimum=0), ValueError, r"sample_index.*>= 0.*-1"),
        (lambda: check_int(2.5, "n_samples"), ValueError, r"n_samples.*2\.5"),
        (lambda: check_int(2.0, "n_samples"), ValueError, r"n_samples.*2\.0"),
        (lambda: check_int(True, "n_samples"), ValueError, r"n_samples.*True"),
        (lambda: check_int("3", "n_samples"), ValueError, r"n_samples.*'3'"),
        (lambda: check_int(None, "steps"), ValueError, r"steps.*None"),
    ],
    "check_number": [
        (lambda: check_number(-0.1, "noise_level", low=0.0), ValueError, r"noise_level.*\[0.0, inf\].*-0\.1"),
        (lambda: check_number(1.5, "fraction", 0.0, 1.0), ValueError, r"fraction.*\[0.0, 1.0\].*1\.5"),
        (lambda: check_number(float("nan"), "noise_level"), ValueError, r"noise_level.*nan"),
        (lambda: check_number(float("inf"), "noise_level"), ValueError, r"noise_level.*inf"),
        (lambda: check_number(True, "noise_level"), ValueError, r"noise_level.*True"),
        (lambda: check_number("0.1", "noise_level"), ValueError, r"noise_level.*'0\.1'"),
        (lambda: check_number(torch.tensor(0.1), "noise_level"), ValueError, r"noise_level.*tensor"),
    ],
    "check_flag": [
        (lambda: check_flag("yes", "antithetic"), TypeError, "antithetic.*True or False.*'yes'"),
    ],
    "check_choice": [
        (lambda: check_choice("middle", "attribute_to", ("output", "input")), ValueError,
         r"attribute_to must be one of \['output', 'input'\], got 'middle'"),
        (lambda: check_choice(None, "variant", ("smoothgrad",)), ValueError, r"variant.*None"),
        (lambda: check_choice(["input"], "attribute_to", ("input",)), ValueError, r"attribute_to.*\['input'\]"),
    ],
    "check_inputs": [
        (lambda: check_inputs(np.zeros((1, 3, 4, 4))), TypeError, r"inputs must be a torch.Tensor.*ndarray"),
        (lambda: check_inputs([0.0], "background"), TypeError, r"background.*list"),
        (lambda: check_inputs(torch.zeros(3, 4, 4)), ValueError, r"inputs.*\(N, C, H, W\).*\(3, 4, 4\)"),
        (lambda: check_inputs(torch.zeros(0, 3, 4, 4), "background"), ValueError, r"background.*N >= 1.*\(0, 3,"),
        (lambda: check_inputs(X4.long()), ValueError, r"inputs.*floating.*int64"),
        (lambda: check_inputs(torch.full((1, 1, 2, 2), float("nan"))), ValueError, r"inputs contains NaN"),
        (lambda: check_inputs(torch.full((1, 1, 2, 2), float("-inf")), "background"), ValueError, r"background.*inf"),
    ],
    "check_seed": [
        (lambda: check_seed(-1), ValueError, r"seed must be a non-negative integer or None, got -1"),
        (lambda: check_seed(1.5), ValueError, r"seed.*1\.5"),
        (lambda: check_seed("0"), ValueError, r"seed.*'0'"),
        (lambda: check_seed(True), ValueError, r"seed.*True"),
    ],
    "as_module": [
        (lambda: as_module("resnet50"), TypeError, r"model must be a torch.nn.Module.*str"),
        (lambda: as_module(types.SimpleNamespace(module="x"), "reference"), TypeError, r"reference.*SimpleNamespace"),
    ],
    "batch_rows": [
        (lambda: batch_rows(0, X4), ValueError, r"batch_size.*0"),
        (lambda: batch_rows(True, X4), ValueError, r"batch_size.*True"),
        (lambda: batch_rows(1.5, X4), ValueError, r"batch_size.*1\.5"),
    ],
    "frozen_model": [(lambda: frozen_model("resnet50").__enter__(), TypeError, r"model.*str")],
    "check_positive": [
        (lambda: check_positive(0, "blur_sigma"), ValueError, r"blur_sigma must be > 0, got 0"),
        (lambda: check_positive(1.5, "fraction", 1.0), ValueError, r"fraction.*\[0.0, 1.0\].*1\.5"),
    ],
    "check_size": [
        (lambda: check_size(0, "grid"), ValueError, r"grid must be an int >= 1 or a pair of them, got 0"),
        (lambda: check_size((2, 3, 4)), ValueError, r"size.*\(2, 3, 4\)"),
    ],
    "as_tensor": [
        (lambda: as_tensor([1.0], "a"), TypeError, r"a must be a torch.Tensor or numpy array, got list"),
        (lambda: as_tensor(torch.ones(2, dtype=torch.bool), "saliency"), ValueError, r"saliency.*real.*bool"),
    ],
    "check_ax": [(lambda: check_ax("foo"), TypeError, r"ax must be a matplotlib Axes or None, got str")],
    "check_method": [(lambda: check_method(3), TypeError, r"method must be a callable.*int")],
    "check_target": [
        (lambda: check_target(torch.tensor([1 + 2j]), 1, None, torch.device("cpu")), ValueError, r"target.*class"),
        (lambda: check_target([1], 2, None, torch.device("cpu")), ValueError, r"one class index per input \(2\)"),
        (lambda: check_target(5, 2, 3, torch.device("cpu")), ValueError, r"target out of range \[0, 3\)"),
        (lambda: check_target(0.5, 2, 3, torch.device("cpu")), ValueError, r"target must be a class index"),
    ],
}
#: public functions that trust their caller: their arguments come from check_seed, as_module or check_inputs
TRUSTING = {"numpy_rng", "torch_generator", "model_device"}
CASES = [pytest.param(*case, id=f"{name}-{i}") for name, cases in BAD_CALLS.items() for i, case in enumerate(cases)]


@pytest.mark.parametrize("call, error, match", CASES)
def test_bad_arguments_raise_an_error_naming_them(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_every_public_function_is_swept_or_trusts_its_caller() -> None:
    public = {n for n, f in vars(_common).items()
              if inspect.isfunction(f) and f.__module__ == _common.__name__ and not n.startswith("_")}
    assert public == set(BAD_CALLS) | TRUSTING


# --------------------------------------------------------------------------- seeds and generators


def test_numpy_rng_streams_are_reproducible_and_distinct() -> None:
    before = _global_states()
    a = numpy_rng(7, 0, 3).random(5)
    assert np.array_equal(a, numpy_rng(7, 0, 3).random(5))
    others = [numpy_rng(7, 0, 4), numpy_rng(7, 3, 0), numpy_rng(8, 0, 3), numpy_rng(7, 0), numpy_rng(7)]
    assert all(not np.allclose(a, g.random(5)) for g in others)  # index order, depth and seed all matter
    # the stream (seed, *index) is NumPy's SeedSequence(seed, spawn_key=index): a known answer
    ref = np.random.default_rng(np.random.SeedSequence(7, spawn_key=(0, 3))).random(5)
    assert np.array_equal(a, ref)
    assert _same_states(before, _global_states())


def test_torch_generator_streams_are_reproducible_distinct_and_seeded_from_seed_sequence() -> None:
    before = _global_states()
    a = torch.randn(5, generator=torch_generator(7, 0, 3))
    assert torch.equal(a, torch.randn(5, generator=torch_generator(7, 0, 3)))
    for other in (torch_generator(7, 0, 4), torch_generator(7, 3, 0), torch_generator(8, 0, 3)):
        assert not torch.allclose(a, torch.randn(5, generator=other))
    state = np.random.SeedSequence(7, spawn_key=(0, 3)).generate_state(1, dtype=np.uint64)[0]
    assert torch_generator(7, 0, 3).initial_seed() == int(state >> 1)
    assert torch_generator(2**63 - 1, 2**40).initial_seed() < 2**63  # large seeds and indices fit
    assert torch_generator(7).device == torch.device("cpu")
    assert _same_states(before, _global_states())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_generator_on_cuda() -> None:
    g = torch_generator(7, 1, device="cuda")
    assert g.device.type == "cuda" and g.initial_seed() == torch_generator(7, 1).initial_seed()
    assert torch.equal(torch.randn(4, generator=g, device="cuda"),
                       torch.randn(4, generator=torch_generator(7, 1, device="cuda"), device="cuda"))


# --------------------------------------------------------------------------- batch rows, modules, devices


def test_batch_rows_default_is_a_pixel_budget() -> None:
    assert BATCH_PIXELS == 8 * 224 * 224
    assert batch_rows(None, torch.zeros(1, 3, 224, 224)) == 8
    assert batch_rows(None, torch.zeros(5, 3, 112, 224)) == 16
    assert batch_rows(None, torch.zeros(1, 3, 1024, 1024)) == 1  # never fewer than one row
    assert batch_rows(None, torch.zeros(1, 3, 8, 8)) == BATCH_PIXELS // 64
    assert batch_rows(3, torch.zeros(1, 3, 1024, 1024)) == 3  # an explicit size is kept
    assert batch_rows(np.int32(4), torch.zeros(1, 3, 8, 8)) == 4


def test_as_module_accepts_a_module_or_what_load_model_returns() -> None:
    model = _model()
    assert as_module(model) is model
    assert as_module(types.SimpleNamespace(module=model, num_classes=2)) is model


def test_model_device_is_the_first_parameter_or_buffer_else_the_fallback() -> None:
    fallback = torch.device("meta")
    assert model_device(_model(), fallback) == torch.device("cpu")
    assert model_device(_model().to("meta"), torch.device("cpu")) == torch.device("meta")
    buffers_only = nn.BatchNorm2d(3, affine=False).to("meta")
    assert model_device(buffers_only, torch.device("cpu")) == torch.device("meta")
    assert model_device(nn.ReLU(), fallback) == fallback


# --------------------------------------------------------------------------- frozen_model


def _state(model: nn.Module) -> tuple:
    return ([m.training for m in model.modules()], [p.requires_grad for p in model.parameters()],
            [p.grad for p in model.parameters()],
            [list(h) for m in model.modules() for h in (m._forward_hooks, m._forward_pre_hooks)])


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_frozen_model_freezes_inside_and_restores_everything_even_on_error(error: type) -> None:
    model = _model()
    model.train()
    model[1].eval()  # mixed modes come back exactly
    model[0].weight.requires_grad_(False)
    grad = torch.ones_like(model[4].weight)
    model[4].weight.grad = grad
    before = _state(model)
    with pytest.raises(error), frozen_model(model) as m:
        assert m is model
        assert not any(p.requires_grad for p in m.parameters())
        assert not any(x.training for x in m.modules())
        m[4].weight.grad = None  # e.g. shap's zero_grad()
        m(torch.rand(2, 3, 5, 5)).sum()
        raise error("boom")
    after = _state(model)
    assert after[:2] == before[:2] and after[3] == before[3]
    assert model[4].weight.grad is grad and model[0].weight.grad is None  # the same .grad objects
    assert model[1].training is False and model[2].training is True


def test_frozen_model_leaves_hooks_to_their_owner_and_takes_a_loaded_model() -> None:
    model = _model()
    loaded = types.SimpleNamespace(module=model, num_classes=2)
    with frozen_model(loaded) as m:
        assert m is model and not model.training
        handle = m[0].register_forward_hook(lambda *a: None)
    assert len(model[0]._forward_hooks) == 1 and model.training  # not silently deleted from a private dict
    handle.remove()


def test_as_tensor_shares_writable_arrays_and_copies_read_only_ones():
    a = np.arange(4.0)
    assert as_tensor(a, "a").data_ptr() == a.__array_interface__["data"][0]  # shared memory
    a.flags.writeable = False  # e.g. a frozen result array: torch would warn about non-writable memory
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = as_tensor(a, "a")
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0] and t.data_ptr() != a.__array_interface__["data"][0]
