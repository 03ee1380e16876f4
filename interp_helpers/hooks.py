"""Leaving a model exactly as found: owned hooks and frozen parameters.

* :class:`OwnedHooks` -- a context manager that registers hooks, keeps the
  handles it got and removes exactly those on exit, also on error
  (pytorch-grad-cam's ``ActivationsAndGradients`` pattern). Hooks that
  someone else registered are never touched.
* :func:`frozen_model` -- eval mode and ``requires_grad=False`` for a block,
  every submodule's training flag and each parameter's ``requires_grad`` and
  ``.grad`` restored on exit.
* :func:`model_fingerprint` -- a snapshot of all of that, for tests.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .validation import as_module

__all__ = ["OwnedHooks", "frozen_model", "model_fingerprint"]


class OwnedHooks:
    """Register hooks inside a ``with`` block; exactly those are removed when it ends.

    >>> with OwnedHooks() as hooks:
    ...     hooks.forward(model.layer2, lambda m, args, out: saved.append(out))
    ...     model(x)
    """

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def forward(self, module: nn.Module, hook: Callable[..., Any], **kwargs: Any) -> RemovableHandle:
        """``module.register_forward_hook(hook, **kwargs)``, owned by this block."""
        return self._own(module.register_forward_hook(hook, **kwargs))

    def forward_pre(self, module: nn.Module, hook: Callable[..., Any], **kwargs: Any) -> RemovableHandle:
        """``module.register_forward_pre_hook(hook, **kwargs)``, owned by this block."""
        return self._own(module.register_forward_pre_hook(hook, **kwargs))

    def tensor(self, tensor: torch.Tensor, hook: Callable[[torch.Tensor], Any]) -> RemovableHandle:
        """``tensor.register_hook(hook)``, owned by this block."""
        return self._own(tensor.register_hook(hook))

    def _own(self, handle: RemovableHandle) -> RemovableHandle:
        self._handles.append(handle)
        return handle

    def remove(self) -> None:
        """Remove every hook registered through this object (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> "OwnedHooks":
        return self

    def __exit__(self, *exc: Any) -> None:  # exceptions propagate
        self.remove()


@contextlib.contextmanager
def frozen_model(model: Any, *, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Run a block with the model in eval mode and its parameters frozen; restore everything after.

    Inside the block every parameter has ``requires_grad=False`` (so backward
    passes compute input gradients only) and, with ``eval_mode``, every
    submodule is in eval mode. On exit -- normal or by exception, including
    ``KeyboardInterrupt`` -- each submodule's training flag, each parameter's
    ``requires_grad`` and ``.grad`` are restored. Hooks are not this function's
    business: code that registers hooks owns them (:class:`OwnedHooks`).
    The model is walked once on entry (modes and parameters together).
    """
    module = as_module(model)
    modes: list[tuple[nn.Module, bool]] = []
    params: list[tuple[nn.Parameter, bool, torch.Tensor | None]] = []
    seen: set[int] = set()
    for m in module.modules():
        modes.append((m, m.training))
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                params.append((p, p.requires_grad, p.grad))
    try:
        for p, _, _ in params:
            p.requires_grad_(False)
        if eval_mode:
            module.eval()
        yield module
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad


def _hook_ids(module: nn.Module) -> list[list[int]]:
    """The ids of every hook attached to ``module`` (read-only; for :func:`model_fingerprint`)."""
    names = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
             "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
             "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks")
    return [sorted(getattr(module, n).keys()) for n in names if hasattr(module, n)]


def model_fingerprint(model: Any) -> dict[str, Any]:
    """A snapshot of everything a helper must leave unchanged; compare two with ``==``.

    Covers each submodule's training flag and hook ids, each parameter's
    ``requires_grad``, the identity and checksum of its ``.grad``, and the parameter values' checksums.
    """
    module = as_module(model)
    return {
        "training": [(n, m.training) for n, m in module.named_modules()],
        "hooks": [(n, _hook_ids(m)) for n, m in module.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in module.named_parameters()],
        "grad": [(n, None if p.grad is None else (id(p.grad), float(p.grad.detach().double().sum())))
                 for n, p in module.named_parameters()],
        "values": [(n, float(p.detach().double().sum())) for n, p in module.named_parameters()],
    }
