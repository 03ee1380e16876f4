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
#: (eight 224 x 224 images).
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


def check_positive(value: Any, name: str, high: float | None = None) -> float:
    """``value`` as a float if it is a finite number > 0 (and <= ``high``)."""
    if check_number(value, name, 0.0, high) > 0:
        return float(value)
    raise ValueError(f"{name} must be > 0, got {value!r}")


def check_size(size: Any, name: str = "size") -> tuple[int, int]:
    """An int >= 1 or a pair of them, as ``(H, W)``."""
    pair = (size, size) if isinstance(size, numbers.Integral) else size
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in pair)):
        raise ValueError(f"{name} must be an int >= 1 or a pair of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """A detached real tensor from a tensor or a NumPy array (shared memory; a read-only array is copied)."""
    t = value
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t if t.flags.writeable else t.copy())
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t.detach()


def check_ax(ax: Any) -> Any:
    """``ax`` if it is a matplotlib ``Axes`` or None."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def check_method(method: Any) -> None:
    """Refuse a ``method`` that is not callable."""
    if not callable(method):
        raise TypeError(f"method must be a callable method(model, inputs, target), got {type(method).__name__}")


class Target:
    """A checked target for a batch of rows: class indices ``(B,)`` on the model's device, or a score callable."""

    def __init__(self, index: torch.Tensor | None, fn: Any, top: int) -> None:
        self.index, self.fn, self.top = index, fn, top

    def rows(self, which: torch.Tensor | slice) -> Target:
        """The target of the rows ``which`` (indices into this target's rows)."""
        return Target(None if self.index is None else self.index[which], self.fn, self.top)

    @property
    def argument(self) -> Any:
        """What to pass on to another method as its ``target``."""
        return self.fn if self.fn is not None else self.index

    def score(self, logits: Any) -> torch.Tensor:
        """One score per row of the logits ``(B, K)``: the target logit, or ``target(logits)``."""
        n = len(self.index) if self.index is not None else None
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or (n is not None and logits.shape[0] != n):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"model must map a batch of images to (N, K) logits, it returned {shape}")
        if self.fn is None:
            if self.top >= logits.shape[1]:
                raise ValueError(f"target out of range [0, {logits.shape[1]}) of the model's logits: {self.top}")
            return logits.gather(1, self.index.view(-1, 1)).squeeze(1)
        out = self.fn(logits)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (logits.shape[0],) or not out.is_floating_point():
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"target callable must map logits (B, K) to one floating score per row (B,), got {got}")
        return out


def check_target(target: Any, n: int, num_classes: int | None, device: torch.device) -> Target:
    """``target`` for ``n`` images: one class index, one per image (checked against ``num_classes``), or a callable."""
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(None, target, 0)
    try:
        t = torch.as_tensor(target if isinstance(target, torch.Tensor) else np.asarray(target)).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.dtype == torch.bool or t.is_complex() or t.is_floating_point() or t.numel() == 0:
        raise ValueError(f"target must be a class index, one per image, or a score callable, got {target!r:.80}")
    t = t.long().expand(n) if t.dim() == 0 else t.reshape(-1).long()
    if t.numel() != n:
        raise ValueError(f"target must hold one class index per input ({n}), got {t.numel()}")
    top = int(t.max())
    if int(t.min()) < 0 or (num_classes is not None and top >= num_classes):
        raise ValueError(f"target out of range [0, {num_classes}): {t.tolist()}")
    return Target(t.to(device), None, top)


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
