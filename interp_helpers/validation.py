"""The one validation module: every generic argument check of the package lives here.

Numbers, fractions, choices, flags, seeds, sizes, tensors, images, class targets and
logits are checked by these functions everywhere; checks of one concept's own objects
(a layer inside a model, a background batch, a TreeSHAP result, a baseline name) live
with that concept and build on these. Public functions validate their arguments at the
boundary and raise ``ValueError``/``TypeError`` whose message names the argument and
the value received. Model-state bookkeeping (modes, ``requires_grad``, hooks) lives in
:mod:`interp_helpers.hooks`.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "as_module",
    "as_tensor",
    "check_attribution",
    "check_choice",
    "check_flag",
    "check_fraction",
    "check_inputs",
    "check_labelled",
    "check_logits",
    "check_number",
    "check_positive_int",
    "check_seed",
    "check_size",
    "check_targets",
]


def as_module(model: Any, name: str = "model") -> nn.Module:
    """Return the ``nn.Module`` behind ``model`` (a module or a :class:`LoadedModel`)."""
    module = getattr(model, "module", model)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module or what load_model returns, "
            f"got {type(model).__name__}"
        )
    return module


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_inputs(inputs: Any, name: str = "inputs") -> torch.Tensor:
    """Check that ``inputs`` is a finite floating 4-D tensor ``(N, C, H, W)`` with N >= 1."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(inputs).__name__}")
    if inputs.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(inputs.shape)}")
    if inputs.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {inputs.dtype}")
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return inputs


def check_targets(target: Any, n: int, num_classes: int | None, name: str = "target") -> torch.Tensor:
    """Turn an int or a sequence/tensor of ``n`` class indices into a long tensor of shape (n,).

    ``num_classes`` (if known) bounds the indices: ``0 <= target < num_classes``.
    """
    if isinstance(target, bool):
        raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}")
    if isinstance(target, numbers.Integral):
        t = torch.full((n,), int(target), dtype=torch.long)
    else:
        if isinstance(target, torch.Tensor):
            t = target.detach().cpu()
        elif isinstance(target, Sequence) or hasattr(target, "__array__"):
            try:
                t = torch.as_tensor(list(target) if isinstance(target, Sequence) else target)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}") from exc
        else:
            raise ValueError(f"{name} must be an int or a sequence of ints, got {target!r}")
        if t.dim() == 0:
            t = t.reshape(1).expand(n)
        if t.dim() != 1 or t.numel() != n:
            raise ValueError(f"{name} must hold one class index per input ({n}), got shape {tuple(t.shape)}")
        if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"{name} must hold integer class indices, got dtype {t.dtype}")
        t = t.to(torch.long)
    if (t < 0).any() or (num_classes is not None and (t >= num_classes).any()):
        raise ValueError(f"{name} out of range [0, {num_classes}): {t.tolist()}")
    return t


def check_logits(logits: Any, batch: int, targets: torch.Tensor | None = None, *,
                 max_target: int | None = None) -> torch.Tensor:
    """Check a model's output for a batch of ``batch`` images: a tensor ``(batch, K)`` of logits.

    With ``targets`` (or their largest value, ``max_target``, which spares a device-to-host
    synchronisation), also check that every target is a valid class index ``< K``.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must map a batch of {batch} images to (N, K) logits, it returned {shape}")
    if targets is not None or max_target is not None:
        top = int(targets.max()) if max_target is None else max_target
        if top >= logits.shape[1]:
            bad = sorted({int(t) for t in targets if int(t) >= logits.shape[1]}) if targets is not None else [top]
            raise ValueError(f"target out of range [0, {logits.shape[1]}) of the model's logits: {bad}")
    return logits


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number in the interval, else raise ``ValueError``.

    The interval is ``[low, high]``; ``low_open``/``high_open`` exclude an end. ``None`` leaves an end unbounded.
    """
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    where = f" in {lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number{where}, got {value!r}")
    v = float(value)
    if ((low is not None and (v < low or (low_open and v == low)))
            or (high is not None and (v > high or (high_open and v == high)))):
        raise ValueError(f"{name} must be a finite number{where}, got {value!r}")
    return v


def check_fraction(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A fraction in ``(0, 1]`` (``[0, 1]`` with ``allow_zero``) as a float, else ``ValueError``."""
    return check_number(value, name, low=0.0, high=1.0, low_open=not allow_zero)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool if it is ``True`` or ``False`` (NumPy's bool too), else ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_size(size: Any, name: str = "size") -> tuple[int, int]:
    """An int >= 1 or a pair of them as ``(H, W)``, else ``ValueError``."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"{name} must be an int >= 1 or a pair of them, got {size!r}")
    return int(size[0]), int(size[1])


def check_seed(seed: Any, name: str = "seed") -> int:
    """A non-negative integer seed; ``None`` draws a fresh one from OS entropy (never from global state)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def check_labelled(mapping: Any, name: str, kind: type) -> Mapping[str, Any]:
    """``mapping`` if it is a non-empty mapping label -> instances of ``kind``, else ``ValueError`` naming it."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(f"{name} must be a non-empty mapping label -> {kind.__name__}, got {mapping!r}")
    for label, value in mapping.items():
        if not isinstance(value, kind):
            raise ValueError(f"{name}[{label!r}] must be a {kind.__name__}, got {type(value).__name__}")
    return mapping


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """A ``torch.Tensor`` from a tensor or a NumPy array (shared memory), else ``TypeError`` naming ``name``."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return value


def check_attribution(attribution: Any, shape: Sequence[int], name: str = "attribution") -> torch.Tensor:
    """A batch of maps for inputs of ``shape`` ``(N, C, H, W)``: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.

    Returns a detached 4-D tensor ``(N, C or 1, H, W)`` on the map's own device and in its own dtype
    (a NumPy array is wrapped, sharing memory). ``TypeError`` for anything but a tensor or an array;
    ``ValueError`` for another shape, a complex or boolean dtype, or NaN/inf values.
    """
    a = as_tensor(attribution, name).detach()
    n, c, h, w = (int(s) for s in shape)
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.dim() != 4 or a.shape[0] != n or tuple(a.shape[2:]) != (h, w) or a.shape[1] not in (1, c):
        raise ValueError(
            f"{name} must have shape (N, C, H, W), (N, 1, H, W) or (N, H, W) matching the inputs "
            f"{(n, c, h, w)}, got {tuple(attribution.shape)}"
        )
    if a.is_complex() or a.dtype == torch.bool:
        raise ValueError(f"{name} must be a real-valued tensor, got dtype {a.dtype}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return a
