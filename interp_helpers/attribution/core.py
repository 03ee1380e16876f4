"""The attribution protocol: one input preparation, one device policy, one seed default.

Every attribution method of the package is a function

    ``method(model, inputs, target, *, <its own data as keywords>) -> Tensor``

(:func:`~interp_helpers.attribution.gradient.gradient`,
:func:`~interp_helpers.attribution.noise.smoothgrad`,
:func:`~interp_helpers.attribution.expected_gradients.expected_gradients`, ...), so
wrappers compose with any of them: ``functools.partial(expected_gradients,
background=bg)`` is again a method, :func:`~interp_helpers.attribution.noise.noise_tunnel`
smooths any method, and the metrics take any method as ``explain``.

* ``model``: an ``nn.Module`` mapping ``(N, C, H, W)`` to logits ``(N, K)``, or what
  :func:`~interp_helpers.models.load_model` returns; left exactly as found.
* ``inputs``: a finite floating tensor ``(N, C, H, W)``.
* ``target``: what is explained -- one class index for every image, one index per
  image (a sequence or tensor), or a callable ``target(logits) -> scores`` mapping the
  ``(B, K)`` logits of a batch to one score per row ``(B,)`` (e.g. ``lambda z: z[:, 3] -
  z[:, 5]``, a logit difference). A callable must treat rows independently: methods
  batch rows of different images and samples together. This is pytorch-grad-cam's
  "targets" idea: *what* is explained is separate from *how*.

:func:`prepare` implements the device policy for every method and metric: the work
runs where the model is (its first parameter's or buffer's device), and results are
returned where the inputs were (:meth:`Prepared.to_home`). A CPU tensor given to a
model on a GPU is therefore moved once, here, and the attribution comes back on the CPU.

:data:`DEFAULT_SEED` (0) is every method's default ``seed``: results are reproducible
unless the caller asks otherwise (``seed=None`` draws a fresh seed from OS entropy).
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from ..validation import as_module, check_inputs, check_logits, check_positive_int, check_targets

__all__ = [
    "DEFAULT_PIXEL_BUDGET",
    "DEFAULT_SEED",
    "Kernel",
    "Method",
    "Prepared",
    "Target",
    "Targets",
    "default_batch_size",
    "model_device",
    "prepare",
    "resolve_batch_size",
    "rowwise",
    "rowwise_kernel",
    "run_rows",
]

#: The default ``seed`` of every method and metric of the package.
DEFAULT_SEED: int = 0

#: What a method explains: a class index, one index per image, or ``score(logits) -> (B,)``.
Target = Union[int, Sequence[int], torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]

#: The protocol every attribution method follows.
Method = Callable[..., torch.Tensor]


def model_device(module: nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's first parameter (or buffer); ``fallback`` for a model with neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return fallback


class Targets:
    """A validated ``target``: class indices ``(N,)`` on the model's device, or a score callable.

    Use :meth:`scores` on a batch's logits to get the scalar per row whose gradient
    a method takes, :meth:`take` for the rows of a chunk, and :attr:`argument` to pass
    the target on to another method.
    """

    def __init__(self, indices: torch.Tensor | None, fn: Callable[[torch.Tensor], torch.Tensor] | None,
                 n: int, max_index: int | None = None, host: torch.Tensor | None = None) -> None:
        self.indices = indices
        self._host = host  # the indices on the CPU, when known (computed on demand otherwise)
        self.fn = fn
        self.n = n
        # the largest index, known on the host: checking it against the logits needs no device sync
        self._max = max_index if max_index is not None or indices is None else int(indices.max())

    @property
    def host(self) -> torch.Tensor | None:
        """The indices on the CPU (as validated, before any device move); None for a callable."""
        if self._host is None and self.indices is not None:
            self._host = self.indices.cpu()
        return self._host

    @property
    def argument(self) -> Any:
        """What to hand to another method as its ``target``: the index tensor, or the callable."""
        return self.fn if self.fn is not None else self.indices

    def take(self, start: int, stop: int) -> "Targets":
        """The targets of rows ``start:stop``."""
        if self.fn is not None:
            return Targets(None, self.fn, stop - start)
        host = None if self._host is None else self._host[start:stop]
        return Targets(self.indices[start:stop], None, stop - start, self._max, host)  # no device sync

    def repeat_interleave(self, m: int) -> "Targets":
        """Each row's target repeated ``m`` times (rows of ``m`` samples per image, image-major)."""
        if self.fn is not None:
            return Targets(None, self.fn, self.n * m)
        host = None if self._host is None else self._host.repeat_interleave(m)
        return Targets(self.indices.repeat_interleave(m), None, self.n * m, self._max, host)

    def scores(self, logits: Any) -> torch.Tensor:
        """One score per row of ``logits`` ``(B, K)``: the target logit, or ``target(logits)``.

        Raises ``ValueError`` naming the model when it does not return ``(B, K)`` logits,
        and naming ``target`` when an index is out of range or the callable returns
        anything but one finite-typed score per row.
        """
        if self.fn is None:
            # the largest index is known on the host: no device sync unless an index is out of range
            check_logits(logits, self.n, self._host if self._host is not None else self.indices,
                         max_target=self._max)
            return logits.gather(1, self.indices.view(-1, 1)).squeeze(1)
        check_logits(logits, self.n)
        out = self.fn(logits)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (self.n,) or not out.is_floating_point():
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"target callable must map logits ({self.n}, K) to one floating score per row ({self.n},), "
                f"it returned {shape}"
            )
        return out


def _resolve_target(target: Any, n: int, num_classes: int | None, device: torch.device,
                    allow_callable: bool) -> Targets:
    if callable(target) and not isinstance(target, (torch.Tensor, numbers.Number)):
        if not allow_callable:
            raise ValueError(f"target must be class indices here (an int or one per image), got a callable {target!r}")
        return Targets(None, target, n)
    indices = check_targets(target, n, num_classes)
    return Targets(indices.to(device), None, n, int(indices.max()), host=indices)


@dataclass(frozen=True)
class Prepared:
    """Validated arguments of a method call (see :func:`prepare`)."""

    module: nn.Module
    inputs: torch.Tensor  # detached, on ``device``
    targets: Targets | None  # None only where prepare(..., allow_none=True) was given no target
    device: torch.device  # where the model runs
    home: torch.device  # where the caller's inputs were: results go back there
    dtype: torch.dtype  # the caller's dtype

    def to_home(self, result: torch.Tensor) -> torch.Tensor:
        """``result`` on the caller's device (and, for floating results, in the inputs' dtype)."""
        dtype = self.dtype if result.is_floating_point() else result.dtype
        return result.to(device=self.home, dtype=dtype)


def prepare(model: Any, inputs: Any, target: Any, *, allow_callable: bool = True,
            allow_none: bool = False) -> Prepared:
    """Validate ``(model, inputs, target)`` and apply the device policy; the one input preparation.

    ``inputs`` must be a finite floating ``(N, C, H, W)`` tensor; ``target`` an int, one
    index per image, or (with ``allow_callable``) a score callable; ``None`` (with
    ``allow_none``, for functions that explain no particular class, e.g. layer activations)
    gives ``targets=None``. Indices are checked against ``model.num_classes`` when the model
    has it (what ``load_model`` returns), else against the logits at the first forward pass.
    The inputs are detached and moved to the model's device; :meth:`Prepared.to_home`
    brings results back.
    """
    module = as_module(model)
    inputs = check_inputs(inputs)
    device = model_device(module, inputs.device)
    if target is None and allow_none:
        targets = None
    else:
        targets = _resolve_target(target, inputs.shape[0], getattr(model, "num_classes", None), device,
                                  allow_callable)
    x = inputs.detach()
    if x.device != device:
        x = x.to(device)
    return Prepared(module, x, targets, device, inputs.device, inputs.dtype)


# --------------------------------------------------------------------------- row-wise methods and batching

#: Pixels per forward/backward pass when ``batch_size`` is not given: eight
#: ImageNet-size (224 x 224) images. Activation memory of a backward pass grows
#: linearly with the pixels in the batch; at this budget a ResNet-50 holds about
#: 1 GB of activations, and on a CPU larger batches are not faster.
DEFAULT_PIXEL_BUDGET: int = 8 * 224 * 224

#: ``kernel(module, batch, targets) -> Tensor``: a method's computation on one batch of rows.
Kernel = Callable[[nn.Module, torch.Tensor, Targets], torch.Tensor]


def rowwise(kernel: Kernel) -> Callable[[Method], Method]:
    """Declare that a method computes every row independently, with ``kernel`` on any batch of rows.

    Deterministic methods whose row ``i`` depends on row ``i`` only (the gradient,
    gradient x input) can be evaluated on batches that mix images and noise samples;
    :func:`~interp_helpers.attribution.noise.noise_tunnel` uses the kernel to batch
    noisy copies across samples. Other methods are called once per noise sample.
    """
    def mark(method: Method) -> Method:
        _ROWWISE[method] = kernel
        return method
    return mark


#: method -> its row-wise kernel, keyed by the function itself: a wrapper of a method (``functools.wraps``,
#: ``functools.partial``) is a different object and is called as the user wrote it.
_ROWWISE: dict[Any, Kernel] = {}


def rowwise_kernel(method: Any) -> Kernel | None:
    """The kernel declared with :func:`rowwise` for exactly ``method`` (not a wrapper or partial of it), else None."""
    try:
        return _ROWWISE.get(method)
    except TypeError:  # an unhashable callable object
        return None


def default_batch_size(inputs: torch.Tensor, total: int) -> int:
    """Rows per pass when ``batch_size=None``: :data:`DEFAULT_PIXEL_BUDGET` pixels, within ``[1, total]``."""
    pixels = int(inputs.shape[-1]) * int(inputs.shape[-2])
    return max(1, min(int(total), DEFAULT_PIXEL_BUDGET // max(pixels, 1)))


def resolve_batch_size(batch_size: Any, module: nn.Module, inputs: torch.Tensor, total: int) -> int:
    """``batch_size`` checked, or the default: the pixel budget, lowered to what fits the memory budget.

    See :func:`default_batch_size` and :func:`~interp_helpers.memory.memory_batch_size`.
    """
    from ..memory import memory_batch_size

    if batch_size is None:
        return memory_batch_size(module, inputs, cap=default_batch_size(inputs, total))
    return check_positive_int(batch_size, "batch_size")


def run_rows(kernel: Kernel, module: nn.Module, inputs: torch.Tensor, targets: Targets,
             batch_size: int) -> torch.Tensor:
    """``kernel`` over ``inputs`` in chunks of ``batch_size`` rows (the module already frozen)."""
    out: torch.Tensor | None = None
    for start in range(0, inputs.shape[0], batch_size):
        stop = min(start + batch_size, inputs.shape[0])
        part = kernel(module, inputs[start:stop], targets.take(start, stop))
        if out is None:
            out = torch.empty((inputs.shape[0], *part.shape[1:]), dtype=part.dtype, device=part.device)
        out[start:stop] = part
    return out
