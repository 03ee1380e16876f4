"""Attribution methods for image classifiers, and noise-averaging over any of them.

Every method is ``method(model, inputs, target, **keywords) -> Tensor``: one attribution per input,
detached, on the inputs' device and in their dtype, computed where the model is. ``target`` is one
class index for every image, one index per image, or a callable ``score(logits) -> (B,)`` that treats
rows independently (e.g. ``lambda z: z[:, 3] - z[:, 5]``, a logit difference). Functions that take a
method take it first: ``noise_tunnel(method, model, inputs, target, ...)``. The model is left exactly
as found.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from . import _common
from ._common import (
    DEFAULT_SEED,
    Target,
    as_module,
    batch_rows,
    check_choice,
    check_flag,
    check_inputs,
    check_int,
    check_method,
    check_number,
    check_seed,
    check_target,
    frozen_model,
    numpy_rng,
    torch_generator,
)

#: The statistics :func:`noise_tunnel` can return.
VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


# --------------------------------------------------------------------------- targets and the device policy


class _Call(NamedTuple):
    """A checked method call: the module, the inputs on its device, the target, and where results go."""

    module: nn.Module
    x: torch.Tensor
    target: Target | None
    home: torch.device
    dtype: torch.dtype

    def back(self, result: torch.Tensor) -> torch.Tensor:
        """``result`` on the caller's device and in the inputs' dtype."""
        return result.to(device=self.home, dtype=self.dtype)


def _prepare(model: Any, inputs: Any, target: Any, *, need_target: bool = True) -> _Call:
    module = as_module(model)
    inputs = check_inputs(inputs)
    device = _common.model_device(module, inputs.device)
    checked = None
    if need_target:
        checked = check_target(target, inputs.shape[0], getattr(model, "num_classes", None), device)
    return _Call(module, inputs.detach().to(device), checked, inputs.device, inputs.dtype)


# --------------------------------------------------------------------------- gradient, gradient x input


def _grad(module: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """d score / d x for every row of the batch in one backward pass (rows are independent in eval mode)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        score = target.score(module(x)).sum()
        grad = torch.autograd.grad(score, x, allow_unused=True)[0] if score.requires_grad else None
    return torch.zeros_like(x) if grad is None else grad


def _grad_x_input(module: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    return _grad(module, x, target).mul_(x)


def _run_rows(kernel: Callable, call: _Call, batch_size: Any) -> torch.Tensor:
    rows = batch_rows(batch_size, call.x)
    with frozen_model(call.module) as m:
        parts = [kernel(m, call.x[s:s + rows], call.target.rows(slice(s, s + rows)))
                 for s in range(0, call.x.shape[0], rows)]
    return call.back(torch.cat(parts))


def gradient(model: Any, inputs: torch.Tensor, target: Any, *, batch_size: int | None = None) -> torch.Tensor:
    """The gradient of the target's score with respect to the input pixels.

    Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks: Visualising Image
    Classification Models and Saliency Maps". The map SmoothGrad smooths.
    """
    return _run_rows(_grad, _prepare(model, inputs, target), batch_size)


def gradient_x_input(model: Any, inputs: torch.Tensor, target: Any, *, batch_size: int | None = None) -> torch.Tensor:
    """The gradient times the input, element-wise (Shrikumar et al. 2016, "Not Just a Black Box").

    Depends on preprocessing: a pixel whose normalised value is 0 gets 0.
    """
    return _run_rows(_grad_x_input, _prepare(model, inputs, target), batch_size)


#: Methods whose rows are independent: noise_tunnel batches their noisy copies across samples and images.
_ROW_KERNELS: dict[Callable, Callable] = {gradient: _grad, gradient_x_input: _grad_x_input}


# --------------------------------------------------------------------------- noise


def _sigmas(x: torch.Tensor, noise_level: float) -> list[float]:
    flat = x.detach().reshape(x.shape[0], -1)
    return (noise_level * (flat.amax(1) - flat.amin(1))).tolist()


def _noise(x: torch.Tensor, images: Sequence[int], samples: Sequence[int], sigmas: Sequence[float], seed: int,
           antithetic: bool) -> torch.Tensor:
    """Noise of copy (image i, sample j) for each row: sigma_i * eps, eps ~ N(0, I) from the stream (seed, i, j).

    Drawn on the CPU, one ``torch.Generator`` per copy, and moved to ``x``'s device in one transfer.
    With ``antithetic``, samples 2m and 2m + 1 get eps and -eps.
    """
    rows = []
    for i, j in zip(images, samples):
        g = torch_generator(seed, i, j // 2 if antithetic else j)
        eps = torch.randn(x.shape[1:], generator=g, dtype=x.dtype)
        rows.append(eps.mul_(-sigmas[i] if antithetic and j % 2 else sigmas[i]))
    return torch.stack(rows).to(x.device)


def add_noise(inputs: torch.Tensor, noise_level: float, *, seed: int | None = DEFAULT_SEED,
              sample_index: int = 0, antithetic: bool = False) -> torch.Tensor:
    """The noisy copy that :func:`noise_tunnel` evaluates as sample ``sample_index`` of each image, to show it."""
    x = check_inputs(inputs).detach()
    level = check_number(noise_level, "noise_level", low=0.0)
    j = check_int(sample_index, "sample_index", minimum=0)
    n = x.shape[0]
    return x + _noise(x, range(n), [j] * n, _sigmas(x, level), check_seed(seed), check_flag(antithetic, "antithetic"))


def _noise_tunnel(method: Any, model: Any, inputs: Any, target: Any, counts: list[int], noise_level: Any,
                  variant: Any, batch_size: Any, seed: Any, antithetic: Any) -> list[torch.Tensor]:
    """The estimate after each of the increasing sample ``counts``, from one run."""
    check_method(method)
    call = _prepare(model, inputs, target)
    sigmas = _sigmas(call.x, check_number(noise_level, "noise_level", low=0.0))
    variant = check_choice(variant, "variant", VARIANTS)
    seed = check_seed(seed)
    antithetic = check_flag(antithetic, "antithetic")
    kernel = next((k for f, k in _ROW_KERNELS.items() if f is method), None)
    rows = batch_rows(batch_size, call.x)
    x, n = call.x, call.x.shape[0]
    sums: list[torch.Tensor] = []  # the sum of attributions and, unless "smoothgrad", of their squares

    def add(index: torch.Tensor, attr: torch.Tensor) -> None:
        attr = attr.detach().to(x.device, torch.float64)
        if not sums:
            sums.extend(torch.zeros((n, *attr.shape[1:]), dtype=torch.float64, device=x.device)
                        for _ in range(1 if variant == "smoothgrad" else 2))
        sums[0].index_add_(0, index, attr)
        if len(sums) == 2:
            sums[1].index_add_(0, index, attr.square())

    results, done = [], 0
    with frozen_model(call.module) as m:
        for count in counts:
            if kernel is not None:  # copies (i, j) image-major, in batches that may span images
                pairs = [(i, j) for i in range(n) for j in range(done, count)]
                for s in range(0, len(pairs), rows):
                    images = [i for i, _ in pairs[s:s + rows]]
                    index = torch.tensor(images, device=x.device)
                    noisy = _noise(x, images, [j for _, j in pairs[s:s + rows]], sigmas, seed, antithetic)
                    add(index, kernel(m, noisy.add_(x[index]), call.target.rows(index)))
            else:  # one call per sample, every image at once
                for j in range(done, count):
                    noisy = _noise(x, range(n), [j] * n, sigmas, seed, antithetic).add_(x)
                    attr = method(m, noisy, call.target.argument)
                    if not isinstance(attr, torch.Tensor) or attr.dim() < 1 or attr.shape[0] != n:
                        got = tuple(attr.shape) if isinstance(attr, torch.Tensor) else type(attr).__name__
                        raise ValueError(f"method must return one attribution per input ({n}, ...), returned {got}")
                    add(torch.arange(n, device=x.device), attr)
            done = count
            mean = sums[0] / count
            stat = {"smoothgrad": mean, "smoothgrad_sq": sums[-1] / count,
                    "vargrad": sums[-1] / count - mean.square()}[variant]
            results.append(call.back(stat))
    return results


def _check_counts(counts: Any) -> list[int]:
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Sequence) or len(counts) == 0:
        raise ValueError(f"counts must be a non-empty increasing sequence of integers >= 1, got {counts!r}")
    points = [check_int(c, "counts") for c in counts]
    if points != sorted(set(points)):
        raise ValueError(f"counts must be strictly increasing, got {list(counts)!r}")
    return points


def noise_tunnel(method: Any, model: Any, inputs: torch.Tensor, target: Any, *, n_samples: int = 50,
                 noise_level: float = 0.15, variant: str = "smoothgrad", batch_size: int | None = None,
                 seed: int | None = DEFAULT_SEED, antithetic: bool = False) -> torch.Tensor:
    """Average any method over noisy copies of the input: Captum's ``NoiseTunnel``, PAIR's ``GetSmoothedMask``.

    For image x_i it evaluates ``method`` at ``n_samples`` copies x_i + eps_ij, eps_ij ~ N(0, sigma_i^2 I),
    sigma_i = ``noise_level`` * (max(x_i) - min(x_i)) (the SmoothGrad paper's noise level, PAIR's
    ``stdev_spread``), and returns the mean a_ij (``"smoothgrad"``, Smilkov et al. 2017), the mean of
    a_ij^2 (``"smoothgrad_sq"``, Hooker et al. 2019) or their population variance (``"vargrad"``,
    Adebayo et al. 2018). The noise of copy (i, j) comes from its own generator, seeded by
    ``(seed, i, j)``: the noise does not depend on ``batch_size``, and the result only up to float rounding
    (batched convolutions sum in another order). With ``antithetic``, samples 2m
    and 2m + 1 get eps and -eps. ``gradient`` and ``gradient_x_input`` are evaluated ``batch_size``
    copies at a time; any other method is called once per sample on all images, as
    ``method(module, noisy_inputs, target)`` (give it its own ``batch_size``).
    """
    return _noise_tunnel(method, model, inputs, target, [check_int(n_samples, "n_samples")], noise_level,
                         variant, batch_size, seed, antithetic)[0]


def smoothgrad(model: Any, inputs: torch.Tensor, target: Any, *, n_samples: int = 50, noise_level: float = 0.15,
               variant: str = "smoothgrad", batch_size: int | None = None, seed: int | None = DEFAULT_SEED,
               antithetic: bool = False) -> torch.Tensor:
    """SmoothGrad: the input gradient averaged over noisy copies of the input.

    Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise by adding noise"
    (arXiv:1706.03825): ``noise_tunnel(gradient, model, inputs, target, ...)``.
    """
    return noise_tunnel(gradient, model, inputs, target, n_samples=n_samples, noise_level=noise_level,
                        variant=variant, batch_size=batch_size, seed=seed, antithetic=antithetic)


def smoothgrad_convergence(model: Any, inputs: torch.Tensor, target: Any, *, counts: Sequence[int],
                           noise_level: float = 0.15, variant: str = "smoothgrad", batch_size: int | None = None,
                           seed: int | None = DEFAULT_SEED, antithetic: bool = False) -> list[torch.Tensor]:
    """SmoothGrad after each of the increasing sample ``counts``, from one run at the largest.

    Entry k equals ``smoothgrad(..., n_samples=counts[k])`` with the same seed, up to float rounding.
    """
    return _noise_tunnel(gradient, model, inputs, target, _check_counts(counts), noise_level, variant,
                         batch_size, seed, antithetic)


# --------------------------------------------------------------------------- layers


class _Stop(Exception):
    """Raised by a capture hook to skip the network after the layer."""


def _check_layer(layer: Any, module: nn.Module, attribute_to: Any = "output") -> None:
    check_choice(attribute_to, "attribute_to", ("output", "input"))
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module inside model, got {type(layer).__name__}")
    if not any(m is layer for m in module.modules()):
        raise ValueError(f"layer must be a submodule of model, got a {type(layer).__name__} that is not in it")


def _hook(layer: nn.Module, where: str, fn: Callable[[torch.Tensor], Any]) -> Any:
    """Register ``fn`` on the layer's output (``fn(out)``) or single input; returns the handle."""
    if where == "output":
        return layer.register_forward_hook(lambda _m, _a, out: fn(out))

    def pre(_m: nn.Module, args: tuple) -> tuple | None:
        value = fn(args[0])
        return None if value is None else (value,)
    return layer.register_forward_pre_hook(pre)


def _capture(m: nn.Module, layer: nn.Module, x: torch.Tensor, where: str, rows: int,
             stop: bool) -> tuple[torch.Tensor, list]:
    """The layer's output (or input) for every row of ``x``, and the model's outputs per batch; no autograd.

    With ``stop`` the network after the layer is skipped (no outputs), and a layer called twice goes unnoticed.
    """
    acts, outs = [], []
    seen: list[torch.Tensor] = []

    def grab(value: Any) -> None:
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"layer {where} must be a single tensor, got {type(value).__name__}")  # noqa: TRY004
        seen.append(value.detach().clone())  # a copy: an in-place operation after the layer would change it
        if stop:
            raise _Stop

    for s in range(0, x.shape[0], rows):
        seen.clear()

        handle = _hook(layer, where, grab)
        try:
            with torch.no_grad():
                outs.append(m(x[s:s + rows]))
        except _Stop:
            pass
        finally:
            handle.remove()
        if len(seen) != 1:
            raise ValueError(f"layer must be called exactly once per forward pass, this {type(layer).__name__} "
                             f"was called {len(seen)} times")
        acts.append(seen[0])
    return torch.cat(acts), outs


def layer_activations(model: Any, inputs: torch.Tensor, *, layer: nn.Module,
                      batch_size: int | None = None) -> torch.Tensor:
    """The output of ``layer`` (a submodule of ``model``) for ``inputs``: ``(N, *activation shape)``."""
    call = _prepare(model, inputs, None, need_target=False)
    _check_layer(layer, call.module)
    with frozen_model(call.module) as m:
        acts, _ = _capture(m, layer, call.x, "output", batch_rows(batch_size, call.x), stop=False)
    return call.back(acts)


def _rest_of_network(m: nn.Module, layer: nn.Module, where: str, dummy: torch.Tensor) -> Callable:
    """``z -> logits`` with the batch ``z`` put in place of the layer's output (or input).

    The model runs on one dummy image while a hook swaps in ``z``: everything after the layer runs on
    ``z``'s batch, and the part before it costs one image.
    """
    def run(z: torch.Tensor) -> Any:
        handle = _hook(layer, where, lambda _value: z.clone())
        try:
            return m(dummy)
        finally:
            handle.remove()
    return run


# --------------------------------------------------------------------------- expected gradients


def _check_background(background: Any, x: torch.Tensor) -> torch.Tensor:
    background = check_inputs(background, "background")
    if background.shape[1:] != x.shape[1:]:
        raise ValueError(f"background must have the inputs' image shape {tuple(x.shape[1:])}, "
                         f"got {tuple(background.shape)}")
    return background


class ExpectedGradientsCheck(NamedTuple):
    """Expected gradients with their completeness check (what :func:`expected_gradients_check` returns).

    attributions: exactly what :func:`expected_gradients` returns for the same arguments.
    draw_sums: ``(N, n_samples)`` float64, each draw's total sum(grad * (a - a')); its mean is the
        attributions' sum per image.
    gap: ``(N,)`` float64, f(x) - E[f(x')], which the sum estimates without bias (completeness).
    """

    attributions: torch.Tensor
    draw_sums: torch.Tensor
    gap: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """The attributions' sum per image, ``(N,)``."""
        return self.draw_sums.mean(1)

    @property
    def standard_error(self) -> torch.Tensor:
        """The Monte Carlo standard error of :attr:`total` (sample std / sqrt(n)); NaN for one draw."""
        n = self.draw_sums.shape[1]
        return self.draw_sums.std(1) / n ** 0.5 if n > 1 else torch.full_like(self.total, float("nan"))

    def table(self) -> Any:
        """A DataFrame, one row per image: the sum, its standard error, the gap and z = (sum - gap) / SE."""
        import pandas as pd

        total, se, gap = (v.cpu().numpy() for v in (self.total, self.standard_error, self.gap))
        return pd.DataFrame({"sum of attributions": total, "standard error": se, "f(x) - E f(x')": gap,
                             "z = (sum - gap) / SE": (total - gap) / se})


def _expected_gradients(model: Any, inputs: Any, target: Any, background: Any, layer: Any, attribute_to: Any,
                        n_samples: Any, batch_size: Any, seed: Any, gap: bool) -> ExpectedGradientsCheck:
    call = _prepare(model, inputs, target)
    background = _check_background(background, call.x)
    if layer is not None:
        _check_layer(layer, call.module, attribute_to)
    else:
        check_choice(attribute_to, "attribute_to", ("output", "input"))
    n_samples = check_int(n_samples, "n_samples")
    seed = check_seed(seed)
    rows = batch_rows(batch_size, call.x)
    x, n = call.x, call.x.shape[0]
    xb = background.detach().to(device=x.device, dtype=x.dtype)
    # draw j of image i: a background index and t ~ U[0, 1) from the stream (seed, i)
    draws = [numpy_rng(seed, i).random((n_samples, 2)) for i in range(n)]
    index = torch.tensor(np.concatenate([np.minimum((d[:, 0] * len(xb)).astype(int), len(xb) - 1) for d in draws]))
    t = torch.tensor(np.concatenate([d[:, 1] for d in draws]))
    with frozen_model(call.module) as m:
        if layer is None:
            acts, base, run = x, xb, m
        else:
            acts, outs = _capture(m, layer, x, attribute_to, rows, stop=False)
            for k, out in enumerate(outs):  # the model returns (B, K) logits and the targets are in range
                call.target.rows(slice(k * rows, (k + 1) * rows)).score(out)
            logits = torch.cat(outs)
            base, _ = _capture(m, layer, xb, attribute_to, rows, stop=True)
            run = _rest_of_network(m, layer, attribute_to, torch.zeros_like(x[:1]))
            with torch.no_grad():  # refuse a layer that a skip connection bypasses
                again = torch.cat([run(acts[s:s + rows]) for s in range(0, n, rows)])
            if not torch.allclose(again, logits, rtol=1e-3, atol=1e-4 * (float(logits.abs().max()) + 1e-12)):
                raise ValueError(f"layer ({type(layer).__name__}) does not separate the network: the logits also "
                                 "depend on tensors that bypass it (a skip connection?)")
        acc = torch.zeros(acts.shape, dtype=torch.float64, device=x.device)
        sums = torch.zeros(n * n_samples, dtype=torch.float64, device=x.device)
        image = torch.arange(n).repeat_interleave(n_samples)
        for s in range(0, n * n_samples, rows):
            img = image[s:s + rows].to(x.device)
            a0 = base[index[s:s + rows].to(x.device)]
            delta = acts[img] - a0
            tt = t[s:s + rows].to(device=x.device, dtype=acts.dtype).view(-1, *[1] * (acts.dim() - 1))
            z = (a0 + tt * delta).requires_grad_(True)
            with torch.enable_grad():
                score = call.target.rows(img).score(run(z)).sum()
                grad = torch.autograd.grad(score, z, allow_unused=True)[0] if score.requires_grad else None
            part = (torch.zeros_like(z) if grad is None else grad * delta).double()
            acc.index_add_(0, img, part)
            sums[s:s + rows] = part.flatten(1).sum(1)
        f_gap = torch.full((n,), float("nan"), dtype=torch.float64)
        if gap:
            with torch.no_grad():
                fx = torch.cat([call.target.rows(slice(s, s + rows)).score(m(x[s:s + rows])) for s in range(0, n, rows)])
                logits_b = torch.cat([m(xb[s:s + rows]) for s in range(0, len(xb), rows)])
            if call.target.fn is not None:
                fb = call.target.fn(logits_b).double().mean().expand(n)
            else:
                fb = call.target.score(logits_b.double().mean(0, keepdim=True).expand(n, -1))
            f_gap = (fx.double() - fb.double()).cpu()
    return ExpectedGradientsCheck(call.back(acc / n_samples), sums.view(n, n_samples).to(call.home),
                                  f_gap.to(call.home))


def expected_gradients(model: Any, inputs: torch.Tensor, target: Any, *, background: torch.Tensor,
                       layer: nn.Module | None = None, attribute_to: str = "output", n_samples: int = 200,
                       batch_size: int | None = None, seed: int | None = DEFAULT_SEED) -> torch.Tensor:
    """Expected gradients of the target's score, at the input or at a layer.

    Erion, Janizek, Sturmfels, Lundberg & Lee 2021, "Improving performance of deep learning models
    with axiomatic attribution priors and expected gradients" (Nat. Mach. Intell. 3, 620-631):
    integrated gradients (Sundararajan et al. 2017) with the baseline drawn from a background set::

        phi(x) = mean_j  grad f(x'_j + t_j (x - x'_j)) * (x - x'_j),   x'_j ~ background, t_j ~ U(0, 1)

    the estimator of shap's ``GradientExplainer`` (``local_smoothing=0``). With ``layer``, a = h(x) is
    that module's output (``attribute_to="output"``) or input (``"input"``) and the interpolation runs in
    activation space, a'_j + t_j (a - a'_j) with a'_j = h(x'_j), through the rest of the network; the
    attributions then sum, in expectation, to f(x) - E[f(x')] at any layer that separates the network
    (a layer bypassed by a skip connection is refused). Draw j of image i comes from the stream
    ``(seed, i)``: the draws do not depend on ``batch_size`` (the result only up to float rounding), and more
    samples keep the first draws.
    Returns ``inputs``' shape, or ``(N, *activation shape)`` for a layer.
    """
    return _expected_gradients(model, inputs, target, background, layer, attribute_to, n_samples, batch_size,
                               seed, gap=False).attributions


def expected_gradients_check(model: Any, inputs: torch.Tensor, target: Any, *, background: torch.Tensor,
                             layer: nn.Module | None = None, attribute_to: str = "output", n_samples: int = 200,
                             batch_size: int | None = None, seed: int | None = DEFAULT_SEED
                             ) -> ExpectedGradientsCheck:
    """:func:`expected_gradients` (same arguments, same draws) with its completeness check.

    Adds each draw's total and f(x) - E[f(x')] (N + M forward passes), so that
    ``(total - gap) / standard_error`` can be read as a standard normal draw.
    """
    return _expected_gradients(model, inputs, target, background, layer, attribute_to, n_samples, batch_size,
                               seed, gap=True)


# --------------------------------------------------------------------------- shap's own estimator


class _Score(nn.Module):
    """The model followed by the target's score: shap explains a model with one output."""

    def __init__(self, module: nn.Module, score: Callable) -> None:
        super().__init__()
        self.module, self.score = module, score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.module(x)).unsqueeze(1)


def shap_gradient_explainer(model: Any, inputs: torch.Tensor, target: Any, *, background: torch.Tensor,
                            layer: nn.Module | None = None, n_samples: int = 200, batch_size: int | None = None,
                            seed: int | None = DEFAULT_SEED) -> torch.Tensor:
    """shap's ``GradientExplainer`` run on the target's score (a method like the others).

    ``layer`` gives shap's ``(model, layer)`` form, which attributes the layer's **input**, interpolates
    in input space and multiplies by the layer input at the interpolated point; its sum is not
    guaranteed to equal f(x) - E[f(x')]. shap seeds NumPy's global generator with ``seed``; the global
    state is restored afterwards.
    """
    import shap

    call = _prepare(model, inputs, target)
    background = _check_background(background, call.x).to(call.x.device)
    if layer is not None:
        _check_layer(layer, call.module)
    n_samples = check_int(n_samples, "n_samples")
    seed = check_seed(seed) % (2**32 - 1)
    rows = batch_rows(batch_size, call.x)
    x, out = call.x, None
    state, hooks_before = np.random.get_state(), set() if layer is None else set(layer._forward_hooks)
    groups = ([(list(range(len(x))), call.target.fn)] if call.target.fn is not None else
              [([i for i, c in enumerate(call.target.index.tolist()) if c == k], k)
               for k in dict.fromkeys(call.target.index.tolist())])
    try:
        with frozen_model(call.module) as m:
            for images, k in groups:
                target = Target(None, k, 0) if callable(k) else None
                score = target.score if target else (lambda z, k=k: Target(torch.full((len(z),), k, device=z.device), None, k).score(z))
                wrapped = _Score(m, score)
                spec = wrapped if layer is None else (wrapped, layer)
                explainer = shap.GradientExplainer(spec, background, batch_size=rows)
                values = np.asarray(explainer.shap_values(x[images], nsamples=n_samples, rseed=seed))
                values = torch.from_numpy(values[..., 0] if values.shape[-1] == 1 else values)
                if out is None:
                    out = torch.zeros((len(x), *values.shape[1:]), dtype=values.dtype)
                out[images] = values
    finally:
        np.random.set_state(state)
        for key in set() if layer is None else set(layer._forward_hooks) - hooks_before:
            del layer._forward_hooks[key]  # shap removes its hook only when shap_values completes
        if layer is not None and hasattr(layer, "target_input"):
            del layer.target_input  # the attribute shap's layer hook leaves behind
    return call.back(out)
