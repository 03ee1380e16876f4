"""What every module shares: argument checks, seeds, batch sizes and leaving a model as found.

The package's conventions are stated once, in the README's "The helper package" section; this
module implements them. Public functions check their arguments here, at the boundary, and raise
``ValueError``/``TypeError`` naming the argument and the value received; internal code trusts
its callers.
"""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

#: The default ``seed`` of every function that draws random numbers.
DEFAULT_SEED = 0

#: ``batch_size=None`` means: as many rows per forward/backward pass as make this many pixels
#: (eight 224 x 224 images), about 1.5 GB of saved activations on DenseNet121.
BATCH_PIXELS = 8 * 224 * 224


def as_module(model: Any, name: str = "model") -> nn.Module:
    """The ``nn.Module`` behind ``model`` (a module, or what ``load_model`` returns)."""
    module = getattr(model, "module", model)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module or what load_model returns, got {type(model).__name__}")
    return module


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float if it is a finite real number in ``[low, high]`` (``None``: unbounded)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(float(value))
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite number in [{low if low is not None else '-inf'}, "
                         f"{high if high is not None else 'inf'}], got {value!r}")
    return float(value)


def check_flag(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_inputs(inputs: Any, name: str = "inputs") -> torch.Tensor:
    """``inputs`` if it is a finite floating tensor ``(N, C, H, W)`` with N >= 1."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(inputs).__name__}")
    if inputs.dim() != 4 or inputs.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {inputs.dtype}")
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return inputs


def check_seed(seed: Any) -> int:
    """A non-negative integer seed; ``None`` draws a fresh one from OS entropy (never from global state)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])  # 32 bits: every library accepts it
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def numpy_rng(seed: int, *index: int) -> np.random.Generator:
    """NumPy's generator for the stream ``(seed, *index)``: independent streams from one seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=index))


def torch_generator(seed: int, *index: int, device: Any = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` for the stream ``(seed, *index)`` (seeded by NumPy's SeedSequence)."""
    state = np.random.SeedSequence(seed, spawn_key=index).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state >> 1))


def batch_rows(batch_size: Any, inputs: torch.Tensor) -> int:
    """Rows per pass: ``batch_size`` checked, or for ``None`` as many as make :data:`BATCH_PIXELS` pixels."""
    if batch_size is not None:
        return check_int(batch_size, "batch_size")
    return max(1, BATCH_PIXELS // (int(inputs.shape[-1]) * int(inputs.shape[-2])))


def model_device(module: nn.Module, fallback: torch.device) -> torch.device:
    """Where the model runs: its first parameter's (or buffer's) device; ``fallback`` for a model with neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return fallback


@contextlib.contextmanager
def frozen_model(model: Any) -> Iterator[nn.Module]:
    """Run a block with the model in eval mode and its parameters frozen; restore both afterwards.

    Inside, every parameter has ``requires_grad=False`` (backward passes compute input gradients only)
    and every submodule is in eval mode. On exit, also by an exception, each submodule's training flag
    and each parameter's ``requires_grad`` and ``.grad`` are restored.
    """
    module = as_module(model)
    modes = [(m, m.training) for m in module.modules()]
    params = [(p, p.requires_grad, p.grad) for p in module.parameters()]
    try:
        for p, _, _ in params:
            p.requires_grad_(False)
        module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad
