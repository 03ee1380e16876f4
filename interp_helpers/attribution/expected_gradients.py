"""Expected gradients at the input or at any layer, batched, seeded and exact in expectation.

Erion, Janizek, Sturmfels, Lundberg & Lee 2021, "Improving performance of deep
learning models with axiomatic attribution priors and expected gradients"
(Nature Machine Intelligence 3, 620-631; arXiv:1906.10670). Expected gradients
is integrated gradients (Sundararajan et al. 2017) with the single baseline
replaced by a distribution of baselines -- a background data set -- and the
path integral estimated by Monte Carlo; shap's ``GradientExplainer`` computes
the same estimator at the input.

Layer attributions here interpolate **in the layer's activation space**: with
``a = h(x)`` the layer's activation and ``g`` the rest of the network
(``f = g o h``), the attribution of ``a`` is the expected gradients of ``g``
at ``a`` against the background activations ``a' = h(x')``. Completeness then
holds for the layer exactly as at the input: the attributions sum, in
expectation, to ``f(x) - E[f(x')]``. (shap's ``(model, layer)`` form does
something else -- see :func:`expected_gradients`.)

Implementation: the activations of the inputs and of the background are
computed once; each draw then runs only the rest of the network. PyTorch cannot
skip the modules that come before the layer inside an arbitrary ``forward``, so
the model is called on a batch of **one** all-zero image (a cheap dummy) while
a hook replaces the layer's output (or input) with the whole batch of
interpolated activations: the shallow part costs 1/``batch_size`` of a full
pass. A one-off check on the inputs (the rest of the network, called on the
dummy and fed the inputs' true activations, must reproduce the model's
logits) refuses layers that do not separate the network -- a module bypassed
by a skip connection would see the dummy's values on the bypass -- and the
activation capture refuses modules called more or less than once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from .. import _rng
from ..validation import as_module, check_inputs, check_logits, check_positive_int, check_targets, check_seed
from ..hooks import frozen_model
from ..memory import memory_batch_size

__all__ = ["ExpectedGradientsCheck", "expected_gradients", "expected_gradients_check", "expected_output_gap"]

_ATTRIBUTE_TO = ("output", "input")

#: Draws per forward/backward pass when ``batch_size`` is not given (shap's ``GradientExplainer`` default),
#: lowered to what fits the memory budget on expensive models.
DEFAULT_BATCH_SIZE = 50


class _StopForward(Exception):
    """Raised by a capture hook to skip the part of the network after the layer."""


# --------------------------------------------------------------------------- checks


def _model_device(module: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return fallback


def _check_background(background: Any, inputs: torch.Tensor) -> torch.Tensor:
    background = check_inputs(background, "background")
    if background.shape[1:] != inputs.shape[1:]:
        raise ValueError(
            f"background images must have the shape of the inputs {tuple(inputs.shape[1:])}, "
            f"got background of shape {tuple(background.shape)}"
        )
    return background


def _check_layer(layer: Any, module: nn.Module, attribute_to: Any) -> nn.Module | None:
    if not isinstance(attribute_to, str) or attribute_to not in _ATTRIBUTE_TO:
        raise ValueError(f"attribute_to must be one of {_ATTRIBUTE_TO}, got {attribute_to!r}")
    if layer is None:
        return None
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module inside model or None, got {type(layer).__name__}")
    if not any(m is layer for m in module.modules()):
        raise ValueError(f"layer must be a submodule of model, got a {type(layer).__name__} that is not in it")
    return layer


# --------------------------------------------------------------------------- draws


def _draws(seed: int, n_images: int, n_samples: int, n_background: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Background index and t in [0, 1) for every (image i, sample j), image-major.

    Draw (i, j) is a function of ``(seed, i, j)`` only (:func:`interp_helpers._rng.uniforms`,
    counter-based), so the draws -- and hence the result -- do not depend on
    ``batch_size``, and raising ``n_samples`` keeps the first draws.
    """
    u = [_rng.uniforms(seed, i, j, n=2) for i in range(n_images) for j in range(n_samples)]
    index = torch.tensor([min(int(a * n_background), n_background - 1) for a, _ in u], dtype=torch.long)
    t = torch.tensor([b for _, b in u], dtype=torch.float64)
    return index, t


# --------------------------------------------------------------------------- layer plumbing


def _single_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"layer {what} must be a single tensor to be attributed, got {type(value).__name__}")
    return value


def _capture(module: nn.Module, layer: nn.Module, attribute_to: str, x: torch.Tensor,
             *, stop: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's activation for ``x`` (and the logits unless ``stop``); counts layer calls."""
    seen: list[torch.Tensor] = []

    def grab(value: Any) -> None:
        seen.append(_single_tensor(value, attribute_to).detach())
        if stop:
            raise _StopForward

    if attribute_to == "output":
        handle = layer.register_forward_hook(lambda _m, _args, out: grab(out))
    else:
        handle = layer.register_forward_pre_hook(lambda _m, args: grab(args))
    logits = None
    try:
        with torch.no_grad():
            logits = module(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if len(seen) != 1:
        raise ValueError(
            f"layer must be called exactly once per forward pass to be attributed, "
            f"this {type(layer).__name__} was called {len(seen)} times"
        )
    if not stop:
        check_logits(logits, x.shape[0])
    return seen[0], logits


def _activations(module: nn.Module, layer: nn.Module, attribute_to: str, x: torch.Tensor,
                 batch_size: int, *, stop: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layer activations of ``x`` in chunks; with ``stop`` the network after the layer is skipped.

    Without ``stop`` the logits are returned too.
    """
    parts = [_capture(module, layer, attribute_to, x[s:s + batch_size], stop=stop)
             for s in range(0, x.shape[0], batch_size)]
    acts = torch.cat([a for a, _ in parts])
    return acts, (None if stop else torch.cat([logits for _, logits in parts]))


def _rest_of_network(module: nn.Module, layer: nn.Module, attribute_to: str,
                     dummy: torch.Tensor) -> Callable[[torch.Tensor], Any]:
    """``z -> logits`` with ``z`` put in place of the layer's output (or input).

    The model is called on ``dummy`` (one image); the hook swaps in ``z``, so
    everything after the swap runs on ``z``'s batch. ``z`` is cloned so that an
    in-place operation downstream never touches the caller's tensor.
    """

    def run(z: torch.Tensor) -> Any:
        if attribute_to == "output":
            handle = layer.register_forward_hook(lambda _m, _args, _out: z.clone())
        else:
            handle = layer.register_forward_pre_hook(lambda _m, _args: (z.clone(),))
        try:
            return module(dummy)
        finally:
            handle.remove()

    return run


def _check_separates(run: Callable[[torch.Tensor], Any], acts: torch.Tensor, logits: torch.Tensor,
                     layer: nn.Module, batch_size: int) -> None:
    """Refuse a layer if the rest of the network fed the true activations misses the logits."""
    try:
        with torch.no_grad():
            again = torch.cat([run(acts[s:s + batch_size]) for s in range(0, acts.shape[0], batch_size)])
    except RuntimeError as exc:
        raise ValueError(
            f"layer ({type(layer).__name__}) does not separate the network: running the rest of the "
            f"network from its activations failed ({exc})"
        ) from exc
    scale = float(logits.abs().max()) + 1e-12
    if again.shape != logits.shape or not torch.allclose(again, logits, rtol=1e-3, atol=1e-4 * scale):
        raise ValueError(
            f"layer ({type(layer).__name__}) does not separate the network: the logits also depend on "
            "tensors computed before the layer that bypass it (a skip connection around it?), so "
            "attributions to this layer alone cannot be complete; pick a module the whole signal passes through"
        )


# --------------------------------------------------------------------------- public


def expected_gradients(
    model: Any,
    inputs: torch.Tensor,
    background: torch.Tensor,
    target: Any,
    *,
    layer: nn.Module | None = None,
    attribute_to: str = "output",
    n_samples: int = 200,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Expected gradients (Erion et al. 2021) of logit[target] at the input or at a layer.

    Erion, Janizek, Sturmfels, Lundberg & Lee 2021, "Improving performance of
    deep learning models with axiomatic attribution priors and expected
    gradients", Nat. Mach. Intell. 3, 620-631 (arXiv:1906.10670).

    * ``layer=None``: input attributions, shape of ``inputs``::

          phi(x) = mean_j  grad f(x'_j + t_j (x - x'_j)) * (x - x'_j)

      with x'_j drawn uniformly from ``background`` and t_j ~ U(0, 1) -- the
      estimator of shap's ``GradientExplainer`` (``local_smoothing=0``).
    * ``layer=<module>``: attributions for that module's output
      (``attribute_to="output"``) or input (``"input"``), shape ``(N, *activation)``.
      With a = h(x) that activation and g the rest of the network, the
      interpolation happens in activation space, a'_j + t_j (a - a'_j) with
      a'_j = h(x'_j), and g is run from the layer on. Completeness holds in
      expectation: ``phi.sum()`` per image -> f(x) - E[f(x')], see
      :func:`expected_output_gap`.

    Not what shap's ``GradientExplainer((model, layer), data)`` returns: shap
    attributes the layer's **input** (so ``(m, m.layer2)`` explains what
    ``layer1`` produced), interpolates in *input* space and multiplies the
    gradient by the layer input *at the interpolated point*, E[h(x_t) * dg/dh(x_t)]
    (gradient x activation along the input path), which does not sum to
    f(x) - E[f(x')]; shap's own tests skip the additivity check for layers.
    ``attribute_to="input"`` gives the same tensor as shap's form, with the
    expected-gradients estimator.

    Cost: each draw is one forward and one backward pass of the network from
    the layer on, ``batch_size`` draws at a time (draws of different images
    share a batch). The activations of the inputs and of the background are
    computed once (the background's without running the part after the
    layer); each pass then calls the model on a single all-zero image whose
    activation a hook replaces by the batch of interpolated ones, so the part
    before the layer costs 1/``batch_size`` of a full pass. Memory: one batch of
    activations for autograd, plus the activations of inputs and background,
    plus a float64 running sum of the inputs' attributions -- nothing grows
    with ``n_samples``.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns) mapping
            ``(N, C, H, W)`` to logits ``(N, K)``; left exactly as found.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``.
        background: baseline images ``(M, C, H, W)``, M >= 1, same (C, H, W).
        target: one class index for all images, or a sequence/tensor of N indices.
        layer: ``None`` for input attributions, or a submodule of ``model``
            that the whole signal passes through, called once per forward pass,
            taking and returning a single tensor.
        attribute_to: ``"output"`` (default) or ``"input"`` of ``layer``;
            ignored when ``layer`` is None.
        n_samples: draws (x', t) per image, >= 1 (shap's default is 200).
        batch_size: draws per forward/backward pass; sets peak memory. The
            result does not depend on it (up to float rounding). Default
            ``None``: :data:`DEFAULT_BATCH_SIZE` draws, fewer where one pass of
            the model would not fit :data:`~interp_helpers.memory.PASS_BUDGET_BYTES`
            (:func:`~interp_helpers.memory.memory_batch_size`; about 10 on DenseNet121).
        seed: draw j of image i uses a generator seeded by ``(seed, i, j)``
            only. ``None`` draws a fresh seed from OS entropy; the global RNG
            is never used.
        progress: show a ``tqdm`` progress bar over the draws.

    Returns:
        A tensor of attributions on ``inputs``' device and dtype: shape of
        ``inputs`` for ``layer=None``, else ``(N, *activation shape)``.

    Raises:
        TypeError / ValueError: naming the offending argument (bad shapes,
        empty background, non-integer counts, a layer outside the model,
        a layer that does not separate the network, bad ``attribute_to``).
    """
    result, _ = _run(model, inputs, background, target, layer=layer, attribute_to=attribute_to,
                     n_samples=n_samples, batch_size=batch_size, seed=seed, draw_sums=False, progress=progress)
    return result


def _run(model: Any, inputs: Any, background: Any, target: Any, *, layer: Any, attribute_to: Any,
         n_samples: Any, batch_size: Any, seed: Any, draw_sums: bool,
         progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate, then run the Monte Carlo loop; optionally keep each draw's completeness sum."""
    module = as_module(model)
    inputs = check_inputs(inputs)
    background = _check_background(background, inputs)
    targets = check_targets(target, inputs.shape[0], getattr(model, "num_classes", None))
    layer = _check_layer(layer, module, attribute_to)
    n_samples = check_positive_int(n_samples, "n_samples")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")

    device = _model_device(module, inputs.device)
    x = inputs.detach().to(device)
    xb = background.detach().to(device=device, dtype=x.dtype)
    targets = targets.to(device)
    n_images = x.shape[0]
    index, t = _draws(seed, n_images, n_samples, xb.shape[0])
    if batch_size is None:  # the whole model bounds the part from the layer on
        batch_size = memory_batch_size(module, x, cap=min(DEFAULT_BATCH_SIZE, n_images * n_samples))

    with frozen_model(module) as m:
        if layer is None:
            acts, base = x, xb
            run: Callable[[torch.Tensor], Any] = m
        else:
            acts, logits = _activations(m, layer, attribute_to, x, batch_size, stop=False)
            check_logits(logits, n_images, targets)
            base, _ = _activations(m, layer, attribute_to, xb, batch_size, stop=True)
            run = _rest_of_network(m, layer, attribute_to, torch.zeros_like(x[:1]))
            _check_separates(run, acts, logits, layer, batch_size)
        result, sums = _accumulate(run, acts, base, targets, index, t, n_samples, batch_size, draw_sums,
                                   progress=progress)
    if sums is not None:
        sums = sums.view(n_images, n_samples).to(inputs.device)
    return result.to(device=inputs.device, dtype=inputs.dtype), sums


def _accumulate(run: Callable[[torch.Tensor], Any], acts: torch.Tensor, base: torch.Tensor,
                targets: torch.Tensor, index: torch.Tensor, t: torch.Tensor,
                n_samples: int, batch_size: int, draw_sums: bool = False, *, progress: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The Monte Carlo loop: mean over draws of grad g(a'+t(a-a')) * (a-a'), float64 sums.

    With ``draw_sums`` also returns each draw's total, sum(grad * (a - a')), image-major.
    """
    device = acts.device
    acc_dtype = torch.float64 if device.type != "mps" else torch.float32
    acc = torch.zeros(acts.shape, dtype=acc_dtype, device=device)
    sums = torch.zeros(index.numel(), dtype=acc_dtype, device=device) if draw_sums else None
    shape = (-1,) + (1,) * (acts.dim() - 1)
    total = index.numel()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="expected gradients", unit="draw")
    try:
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            rows = torch.arange(start, stop, device=device) // n_samples
            a = acts[rows]
            a0 = base[index[start:stop].to(device)]
            delta = a - a0
            tt = t[start:stop].to(device=device, dtype=acts.dtype).view(shape)
            z = (a0 + tt * delta).requires_grad_(True)
            with torch.enable_grad():
                logits = check_logits(run(z), stop - start, targets[rows])
                score = logits.gather(1, targets[rows].view(-1, 1)).sum()
                (grad,) = torch.autograd.grad(score, z)
            contribution = (grad * delta).to(acc_dtype)
            acc.index_add_(0, rows, contribution)
            if sums is not None:
                sums[start:stop] = contribution.flatten(1).sum(1)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()
    return acc / n_samples, sums


def expected_output_gap(model: Any, inputs: torch.Tensor, background: torch.Tensor, target: Any,
                        *, batch_size: int | None = None) -> torch.Tensor:
    """f(x) - mean over the background of f(x'): what expected gradients sum to.

    For every image, the logit of its target class minus the mean logit of
    that class over ``background``. :func:`expected_gradients` attributions
    (at the input or at any layer that separates the network) sum to this in
    expectation, so ``phi.flatten(1).sum(1) - expected_output_gap(...)`` is
    the Monte Carlo error of a run. Returns a float64 tensor ``(N,)`` on the
    inputs' device; the model is left as found. Forward passes only (no autograd),
    ``batch_size`` images at a time (default :data:`DEFAULT_BATCH_SIZE`).
    """
    module = as_module(model)
    inputs = check_inputs(inputs)
    background = _check_background(background, inputs)
    targets = check_targets(target, inputs.shape[0], getattr(model, "num_classes", None))
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else check_positive_int(batch_size, "batch_size")
    device = _model_device(module, inputs.device)
    targets = targets.to(device)

    def logits_of(x: torch.Tensor, m: nn.Module) -> torch.Tensor:
        parts = []
        with torch.no_grad():
            for s in range(0, x.shape[0], batch_size):
                chunk = x[s:s + batch_size].detach().to(device)
                parts.append(check_logits(m(chunk), chunk.shape[0], targets).double())
        return torch.cat(parts)

    with frozen_model(module) as m:
        fx = logits_of(inputs, m).gather(1, targets.view(-1, 1)).squeeze(1)
        fb = logits_of(background.to(dtype=inputs.dtype), m).mean(0)[targets]
    return (fx - fb).to(inputs.device)


class ExpectedGradientsCheck(NamedTuple):
    """What :func:`expected_gradients_check` returns: attributions plus a completeness check.

    attributions: exactly what :func:`expected_gradients` returns for the same arguments.
    draw_sums: ``(N, n_samples)`` float64, the total of each draw, sum(grad * (a - a'));
        ``draw_sums.mean(1)`` equals ``attributions.sum()`` per image (up to rounding).
    gap: ``(N,)`` float64, f(x) - E[f(x')] (:func:`expected_output_gap`): what the sums estimate.
    """

    attributions: torch.Tensor
    draw_sums: torch.Tensor
    gap: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """``(N,)``: the attributions' sum per image, the Monte Carlo estimate of :attr:`gap`."""
        return self.draw_sums.mean(1)

    @property
    def standard_error(self) -> torch.Tensor:
        """``(N,)``: the Monte Carlo standard error of :attr:`total` (sample std / sqrt(n)); NaN for one draw."""
        n = self.draw_sums.shape[1]
        return self.draw_sums.std(1) / n ** 0.5 if n > 1 else torch.full_like(self.total, float("nan"))

    def table(self) -> Any:
        """A pandas DataFrame, one row per image: total, standard error, gap, and (total - gap) / SE."""
        import pandas as pd

        total, se, gap = (v.detach().cpu().numpy() for v in (self.total, self.standard_error, self.gap))
        return pd.DataFrame({"sum of attributions": total, "standard error": se,
                             "f(x) - E f(x')": gap, "z = (sum - gap) / SE": (total - gap) / se})


def expected_gradients_check(
    model: Any,
    inputs: torch.Tensor,
    background: torch.Tensor,
    target: Any,
    *,
    layer: nn.Module | None = None,
    attribute_to: str = "output",
    n_samples: int = 200,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: bool = False,
) -> ExpectedGradientsCheck:
    """:func:`expected_gradients` plus a completeness diagnostic, at the cost of N + M extra forward passes.

    Same arguments, same draws and the same attributions as
    :func:`expected_gradients`; in addition it keeps the total of every draw
    (whose mean is the attributions' sum and whose spread gives the Monte Carlo
    standard error) and computes f(x) - E[f(x')] (:func:`expected_output_gap`).
    Completeness says the sum estimates the gap without bias, so
    ``(total - gap) / standard_error`` should look like a standard normal
    draw. Per-draw totals are often heavy-tailed: most of the logit's change
    can happen on a short stretch of the path.
    """
    attributions, sums = _run(model, inputs, background, target, layer=layer, attribute_to=attribute_to,
                              n_samples=n_samples, batch_size=batch_size, seed=seed, draw_sums=True,
                              progress=progress)
    gap = expected_output_gap(model, inputs, background, target, batch_size=batch_size)
    return ExpectedGradientsCheck(attributions, sums, gap)
