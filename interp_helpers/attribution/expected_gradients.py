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
activation capture refuses modules called more or less than once
(:mod:`interp_helpers.attribution.layers`, whose hooks are owned: none is left
behind, also when the model raises mid-run).

:func:`expected_gradients` follows the package protocol
``method(model, inputs, target, *, ...)`` (:mod:`interp_helpers.attribution.core`):
``functools.partial(expected_gradients, background=bg)`` is a method that
:func:`~interp_helpers.attribution.noise.noise_tunnel` can smooth and the metrics can call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from .. import _rng
from ..hooks import frozen_model
from ..memory import memory_batch_size
from ..validation import check_flag, check_inputs, check_logits, check_positive_int, check_seed
from .core import DEFAULT_SEED, Target, Targets, prepare
from .layers import capture, check_layer, check_separates, rest_of_network

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ExpectedGradientsCheck",
    "check_background",
    "expected_gradients",
    "expected_output_gap",
]

#: Draws per forward/backward pass when ``batch_size`` is not given (shap's ``GradientExplainer`` default),
#: lowered to what fits the memory budget on expensive models.
DEFAULT_BATCH_SIZE = 50


def check_background(background: Any, inputs: torch.Tensor) -> torch.Tensor:
    """``background`` checked: a finite floating ``(M, C, H, W)`` tensor, M >= 1, with the inputs' ``(C, H, W)``."""
    background = check_inputs(background, "background")
    if background.shape[1:] != inputs.shape[1:]:
        raise ValueError(
            f"background images must have the shape of the inputs {tuple(inputs.shape[1:])}, "
            f"got background of shape {tuple(background.shape)}"
        )
    return background


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


# --------------------------------------------------------------------------- diagnostics


class ExpectedGradientsCheck(NamedTuple):
    """What ``expected_gradients(..., diagnostics=True)`` returns: attributions plus a completeness check.

    Same draws and the same attributions as without ``diagnostics``; in addition
    the total of every draw (whose mean is the attributions' sum and whose spread
    gives the Monte Carlo standard error) and f(x) - E[f(x')]
    (:func:`expected_output_gap`), at the cost of N + M extra forward passes.
    Completeness says the sum estimates the gap without bias, so
    ``(total - gap) / standard_error`` should look like a standard normal draw.
    Per-draw totals are often heavy-tailed: most of the score's change can
    happen on a short stretch of the path.

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


# --------------------------------------------------------------------------- public


def expected_gradients(
    model: Any,
    inputs: torch.Tensor,
    target: Target,
    *,
    background: torch.Tensor,
    layer: nn.Module | None = None,
    attribute_to: str = "output",
    n_samples: int = 200,
    batch_size: int | None = None,
    seed: int | None = DEFAULT_SEED,
    diagnostics: bool = False,
    progress: bool = False,
) -> torch.Tensor | ExpectedGradientsCheck:
    """Expected gradients (Erion et al. 2021) of the target's score at the input or at a layer.

    Erion, Janizek, Sturmfels, Lundberg & Lee 2021, "Improving performance of
    deep learning models with axiomatic attribution priors and expected
    gradients", Nat. Mach. Intell. 3, 620-631 (arXiv:1906.10670).

    * ``layer=None``: input attributions, shape of ``inputs``::

          phi(x) = mean_j  grad f(x'_j + t_j (x - x'_j)) * (x - x'_j)

      with f the target's score, x'_j drawn uniformly from ``background`` and
      t_j ~ U(0, 1) -- the estimator of shap's ``GradientExplainer`` (``local_smoothing=0``).
    * ``layer=<module>``: attributions for that module's output
      (``attribute_to="output"``) or input (``"input"``), shape ``(N, *activation)``.
      With a = h(x) that activation and g the rest of the network, the
      interpolation happens in activation space, a'_j + t_j (a - a'_j) with
      a'_j = h(x'_j), and g is run from the layer on. Completeness holds in
      expectation: ``phi.sum()`` per image -> f(x) - E[f(x')], see
      :func:`expected_output_gap` and ``diagnostics``.

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
    plus a float64 running sum of the inputs' attributions -- no tensor of
    activations grows with ``n_samples`` (only the draws' indices do).

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns) mapping
            ``(N, C, H, W)`` to logits ``(N, K)``; left exactly as found.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``.
        target: one class index for all images, one index per image, or a callable
            ``score(logits) -> (B,)`` treating rows independently, e.g. a logit
            difference ``lambda z: z[:, 3] - z[:, 5]`` (see :mod:`interp_helpers.attribution.core`).
            Attributions are linear in the score: for the same ``seed`` the
            logit difference's attributions are the difference of the two classes'.
        background: baseline images ``(M, C, H, W)``, M >= 1, same (C, H, W).
        layer: ``None`` for input attributions, or a submodule of ``model``
            that the whole signal passes through, called once per forward pass,
            taking and returning a single tensor.
        attribute_to: ``"output"`` (default) or ``"input"`` of ``layer``;
            checked but without effect when ``layer`` is None.
        n_samples: draws (x', t) per image, >= 1 (shap's default is 200).
        batch_size: draws per forward/backward pass; sets peak memory. The
            result does not depend on it (up to float rounding). Default
            ``None``: :data:`DEFAULT_BATCH_SIZE` draws, fewer where one pass of
            the model would not fit :data:`~interp_helpers.memory.PASS_BUDGET_BYTES`
            (:func:`~interp_helpers.memory.memory_batch_size`; about 10 on DenseNet121).
        seed: draw j of image i depends on ``(seed, i, j)`` only (default 0).
            ``None`` draws a fresh seed from OS entropy; the global RNG is never used.
        diagnostics: also return a completeness check: an :class:`ExpectedGradientsCheck`
            ``(attributions, draw_sums, gap)`` with the same attributions, each draw's
            total and f(x) - E[f(x')], at the cost of N + M extra forward passes.
        progress: show a ``tqdm`` progress bar over the draws.

    Returns:
        A tensor of attributions on ``inputs``' device and dtype (computed on the
        model's device): shape of ``inputs`` for ``layer=None``, else
        ``(N, *activation shape)``. With ``diagnostics``, an :class:`ExpectedGradientsCheck`
        (``draw_sums`` and ``gap`` float64, on ``inputs``' device).

    Raises:
        TypeError / ValueError: naming the offending argument (bad shapes,
        empty background, non-integer counts, a target out of range, a layer
        outside the model, a layer that does not separate the network or is
        not called exactly once, bad ``attribute_to``).
    """
    prep = prepare(model, inputs, target)
    background = check_background(background, prep.inputs)
    layer = check_layer(layer, prep.module, where=attribute_to, name="attribute_to")
    n_samples = check_positive_int(n_samples, "n_samples")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_seed(seed)
    diagnostics = check_flag(diagnostics, "diagnostics")
    progress = check_flag(progress, "progress")

    x = prep.inputs
    xb = background.detach().to(device=prep.device, dtype=x.dtype)
    n_images = x.shape[0]
    index, t = _draws(seed, n_images, n_samples, xb.shape[0])
    bs = batch_size
    if bs is None:  # the whole model bounds the part from the layer on
        bs = memory_batch_size(prep.module, x, cap=min(DEFAULT_BATCH_SIZE, n_images * n_samples))

    with frozen_model(prep.module) as m:
        if layer is None:
            acts, base = x, xb
            run: Callable[[torch.Tensor], Any] = m
        else:
            acts, logits = capture(m, layer, x, attribute_to, batch_size=bs)
            prep.targets.scores(logits)  # the model returns logits and the targets are in range
            base = capture(m, layer, xb, attribute_to, batch_size=bs, stop=True).activations
            run = rest_of_network(m, layer, attribute_to, torch.zeros_like(x[:1]))
            check_separates(run, acts, logits, layer, bs)
        result, sums = _accumulate(run, acts, base, prep.targets, index, t, n_samples, bs, diagnostics,
                                   progress=progress)
        if not diagnostics:
            return prep.to_home(result)
        gap = _output_gap(m, x, xb, prep.targets, DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
    return ExpectedGradientsCheck(prep.to_home(result), sums.view(n_images, n_samples).to(prep.home),
                                  gap.to(prep.home))


def _accumulate(run: Callable[[torch.Tensor], Any], acts: torch.Tensor, base: torch.Tensor,
                targets: Targets, index: torch.Tensor, t: torch.Tensor,
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
    row_targets = targets.repeat_interleave(n_samples)  # image-major, like the draws
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
                score = row_targets.take(start, stop).scores(run(z)).sum()
                (grad,) = torch.autograd.grad(score, z, allow_unused=True)
            if grad is None:  # the score does not depend on this tensor
                grad = torch.zeros_like(z)
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


def _output_gap(m: nn.Module, x: torch.Tensor, xb: torch.Tensor, targets: Targets, batch_size: int) -> torch.Tensor:
    """f(x) - mean over the background of f(x') in float64, ``batch_size`` images per forward pass.

    ``m`` is frozen; ``x`` and ``xb`` are on its device, in one dtype.
    """
    with torch.no_grad():
        fx = torch.cat([targets.take(s, min(s + batch_size, x.shape[0])).scores(m(x[s:s + batch_size])).double()
                        for s in range(0, x.shape[0], batch_size)])
        parts = []
        for s in range(0, xb.shape[0], batch_size):
            chunk = xb[s:s + batch_size]
            out = m(chunk)
            if targets.indices is not None:
                parts.append(check_logits(out, chunk.shape[0], targets.indices).double())
            else:
                parts.append(Targets(None, targets.fn, chunk.shape[0]).scores(out).double())
        if targets.indices is not None:
            fb = torch.cat(parts).mean(0)[targets.indices]
        else:
            fb = torch.cat(parts).mean().expand(x.shape[0])
    return fx - fb


def expected_output_gap(model: Any, inputs: torch.Tensor, target: Target, *, background: torch.Tensor,
                        batch_size: int | None = None) -> torch.Tensor:
    """f(x) - mean over the background of f(x'): what expected gradients sum to.

    For every image, the score of its target (the target class's logit, or
    ``target(logits)`` for a callable) minus the mean score over ``background``.
    :func:`expected_gradients` attributions (at the input or at any layer that
    separates the network) sum to this in expectation, so
    ``phi.flatten(1).sum(1) - expected_output_gap(...)`` is the Monte Carlo
    error of a run (``expected_gradients(..., diagnostics=True)`` computes both).
    Returns a float64 tensor ``(N,)`` on the inputs' device (computed on the
    model's); the model is left as found. Forward passes only (no autograd),
    ``batch_size`` images at a time (default :data:`DEFAULT_BATCH_SIZE`).
    """
    prep = prepare(model, inputs, target)
    background = check_background(background, prep.inputs)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else check_positive_int(batch_size, "batch_size")
    xb = background.detach().to(device=prep.device, dtype=prep.inputs.dtype)
    with frozen_model(prep.module) as m:
        gap = _output_gap(m, prep.inputs, xb, prep.targets, batch_size)
    return gap.to(prep.home)
