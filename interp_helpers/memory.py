"""Batch sizes from a memory budget: how many images fit in one forward/backward pass of a given model.

A gradient-based attribution keeps, for every image of a batch, the activations autograd saves for
the backward pass. That cost depends on the architecture far more than on anything else: on
224 x 224 inputs DenseNet121 saves about 125 MB per image, ResNet50 82 MB and EfficientNet-Lite0
76 MB (measured by :func:`saved_bytes_per_image`). A batch size that suits a cheap model can
exhaust a laptop on an expensive one (expected gradients' historical default of 50 draws per pass
is 7-9 GB of activations on DenseNet121), so the attribution helpers pick their *default*
batch size with :func:`memory_batch_size`: as many images as fit in :data:`PASS_BUDGET_BYTES`.
A ``batch_size`` given explicitly is used as given.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from .hooks import frozen_model
from .validation import as_module, check_inputs, check_positive_int

__all__ = ["BACKWARD_FACTOR", "PASS_BUDGET_BYTES", "memory_batch_size", "saved_bytes_per_image"]

#: Activation memory one forward/backward pass may use when the batch size is left to the helpers:
#: 2 GiB, so that a notebook (about 1.5 GB of libraries, model and data besides) stays far below
#: 8 GB on every model here.
PASS_BUDGET_BYTES: int = 2 * 2**30

#: Peak memory of a backward pass per image, as a multiple of the bytes autograd saves: the
#: gradient buffers of the backward pass come on top. Measured on CPU (peak RSS growth per image
#: over batches of 4): 1.32 x for EfficientNet-Lite0, 1.34 x for ResNet50, 1.17 x for DenseNet121.
BACKWARD_FACTOR: float = 1.5

_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]]" = weakref.WeakKeyDictionary()


def saved_bytes_per_image(model: Any, inputs: torch.Tensor) -> int:
    """Bytes autograd saves for the backward pass of one image shaped like ``inputs[0]``.

    One forward pass of a zero image (on ``inputs``' device and dtype) with gradients flowing to
    the input only (parameters frozen, eval mode, as the attribution helpers run the model),
    counting every distinct storage autograd saves that is not a parameter. The model is left as
    found. Cached per module, image shape, dtype and device.
    """
    module = as_module(model)
    x = check_inputs(inputs)
    key = (tuple(x.shape[1:]), x.dtype, x.device)
    cached = _CACHE.get(module, {})
    if key in cached:
        return cached[key]
    params = {p.data_ptr() for p in module.parameters()} | {b.data_ptr() for b in module.buffers()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    probe = torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device, requires_grad=True)
    with frozen_model(module) as m, torch.enable_grad():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = m(probe)
        del out
    value = sum(storages.values())
    _CACHE.setdefault(module, {})[key] = value
    return value


def memory_batch_size(model: Any, inputs: torch.Tensor, *, budget_bytes: int | None = None,
                      cap: int | None = None) -> int:
    """Images per forward/backward pass that fit in ``budget_bytes`` (default :data:`PASS_BUDGET_BYTES`).

    ``budget_bytes // (BACKWARD_FACTOR * saved_bytes_per_image)``, at least 1 and at most ``cap``.
    """
    budget = PASS_BUDGET_BYTES if budget_bytes is None else budget_bytes
    budget = check_positive_int(budget, "budget_bytes")
    if cap is not None:
        cap = check_positive_int(cap, "cap")
    per_image = BACKWARD_FACTOR * max(saved_bytes_per_image(model, inputs), 1)
    size = max(1, int(budget // per_image))
    return size if cap is None else min(size, cap)
