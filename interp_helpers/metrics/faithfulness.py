"""Is an attribution map faithful to the model? Deletion and insertion curves.

Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation
of Black-box Models", BMVC, Sec. 4 ("causal metrics"). Pixels are removed from
the image (deletion) or revealed on top of a baseline (insertion) from most to
least important according to the map, and the class probability is recorded
after each step. A faithful map makes the deletion curve fall fast (low area
under the curve) and the insertion curve rise fast (high area).

The other check of notebook 05, cascading model-parameter randomization
(Adebayo et al. 2018), lives in :mod:`interp_helpers.metrics.sanity`.

Baselines as in RISE. The RISE reference code (github.com/eclique/RISE,
``evaluation.py`` and its ``Evaluation.ipynb``) scores the *softmax
probability*, deletes towards ``torch.zeros_like`` of the normalised input
(for ImageNet-normalised inputs: the mean ImageNet colour) and inserts onto a
*blurred* copy of the image. Those are the defaults here: ``deletion_curve``
uses ``baseline="zero"``, ``insertion_curve`` ``baseline="blur"``. The AUC is
the trapezoid rule over the fraction of pixels changed, which is RISE's
``auc()`` (``(sum - first/2 - last/2) / (n - 1)``) when the steps are equal.
Two details differ from the reference code and are documented where they act:
RISE's blur kernel is ``gkern(11, 5)`` (an 11x11 window, sigma 5, convolved
with zero padding, so the border darkens), ours
:func:`interp_helpers.maps.gaussian_blur`: sigma 5, truncated like scipy at
radius ``int(3 * sigma + 0.5)``, with replicated edges; and RISE removes 224
pixels per step (224 steps on 224x224), while ``steps`` here is a parameter (a
coarser grid).

Quantus (``quantus.PixelFlipping``, deletion only) computes the same deletion
curve up to its conventions: it ranks the *flattened* ``(C, H, W)`` map (give
it the channel-reduced map broadcast over channels and ``features_in_step = C
* pixels per step``), it does not record the unperturbed image (its curve is
``scores[:, 1:]`` here), its ``perturb_baseline="black"`` is each image's
minimum value over all channels (not zero and not black in pixel space),
``abs=False, normalise=True`` by default (normalising by the maximum does not
change a ranking), and its AUC is ``np.trapz(curve, dx=1)`` over the steps
without the start point. ``tests/test_quantus.py`` checks the curves agree
exactly once these are aligned.

The map to evaluate is given as a tensor/array, or as an explain callable
``explain(model, inputs, target) -> Tensor`` (the package's protocol, e.g.
``functools.partial(expected_gradients, background=bg, seed=0)``), called once.
Everything runs on the model's device, wherever the inputs were; results are
NumPy arrays. Everything here computes; nothing plots (see
:mod:`interp_helpers.plotting.evaluation`).

Channel reduction. The curves rank *pixels*, so a ``(C, H, W)`` map is reduced
over channels first by :func:`interp_helpers.maps.reduce_channels`. The default
is :data:`interp_helpers.maps.DEFAULT_REDUCTION`, ``sum_c |a_c|`` ("abs_sum"):
it is the convention of the saliency-map literature (Simonyan et al. 2014 take
the max of ``|grad|``; Smilkov et al. 2017 and Adebayo et al. 2018 sum
absolute values), it puts signed maps (gradient, gradient x input, expected
gradients) and non-negative ones (SmoothGrad², VarGrad) on one footing, and for
a perturbation towards a blurred or mean image the direction of the change of
each pixel -- hence which gradient sign helps -- is not known in advance.
Its cost: pixels of strong *negative* evidence count as important.
``reduction="sum"`` (signed: positive evidence first, negative evidence last)
and ``"max_abs"`` are available too.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..attribution.core import prepare
from ..hooks import frozen_model
from ..maps import DEFAULT_REDUCTION, REDUCTIONS, gaussian_blur, reduce_channels
from ..validation import (
    check_attribution,
    check_choice,
    check_inputs,
    check_labelled,
    check_logits,
    check_number,
    check_positive_int,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BASELINES",
    "DEFAULT_BLUR_SIGMA",
    "CurveResult",
    "auc_table",
    "deletion_curve",
    "frozen_array",
    "insertion_curve",
    "make_baseline",
]

#: Names accepted by ``baseline=`` (a tensor broadcastable to the inputs is accepted too).
BASELINES = ("zero", "blur", "mean")

#: RISE's insertion metric starts from a blurred image; their code blurs with a
#: Gaussian of sigma 5 px (on 224x224 inputs). We keep sigma 5 and truncate at 3 sigma.
DEFAULT_BLUR_SIGMA = 5.0

#: An attribution map: a tensor or array, or an explain callable ``explain(model, inputs, target) -> Tensor``.
AttributionLike = Any

_EXPLAIN_NAME = "attribution(model, inputs, target)"



def frozen_array(a: Any, dtype: Any = np.float64) -> np.ndarray:
    """A read-only copy of ``a`` in ``dtype``: results of the metrics cannot be changed by accident."""
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class CurveResult:
    """A deletion or insertion curve for ``N`` images.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        baseline: the baseline's name (``"zero"``, ``"blur"``, ``"mean"``) or ``"custom"``.
        reduction: how the attribution was reduced over channels (one of ``maps.REDUCTIONS``).
        fractions: shape ``(steps + 1,)``, the fraction of pixels removed (deletion) or
            inserted (insertion) at each step, from 0 to 1. Exact: ``k / (H * W)``.
        scores: shape ``(N, steps + 1)``, the softmax probability of the target class.
        auc: shape ``(N,)``, the trapezoidal area under each image's curve over
            ``fractions`` (so in ``[0, 1]``). Always one value per image, also for ``N = 1``.
        target: shape ``(N,)``, the class index scored for each image.
    """

    kind: str
    baseline: str
    reduction: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    target: np.ndarray

    def __repr__(self) -> str:
        n, s = self.scores.shape
        return (
            f"CurveResult(kind={self.kind!r}, baseline={self.baseline!r}, reduction={self.reduction!r}, "
            f"images={n}, steps={s - 1}, auc={np.array2string(self.auc, precision=3)})"
        )


# --------------------------------------------------------------------------- baselines


def _check_baseline(baseline: Any, blur_sigma: Any, shape: torch.Size) -> str | torch.Tensor:
    """The baseline's name, or a detached tensor that broadcasts to ``shape``; ``blur_sigma`` checked for "blur"."""
    if isinstance(baseline, torch.Tensor):
        if not baseline.is_floating_point() or not torch.isfinite(baseline).all():
            raise ValueError("baseline must be a finite floating-point tensor")
        try:
            broadcast = torch.broadcast_shapes(baseline.shape, shape)
        except RuntimeError:
            broadcast = None
        if broadcast != shape:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to the inputs {tuple(shape)}"
            )
        return baseline.detach()
    name = check_choice(baseline, "baseline", BASELINES)
    if name == "blur":
        check_number(blur_sigma, "blur_sigma", low=0.0, low_open=True)
    return name


def _baseline(x: torch.Tensor, baseline: str | torch.Tensor, blur_sigma: float) -> torch.Tensor:
    """The baseline for checked inputs ``x``, on their device and in their dtype (arguments already checked)."""
    if isinstance(baseline, torch.Tensor):
        return torch.broadcast_to(baseline.to(x.device, x.dtype), x.shape).clone()
    if baseline == "zero":
        return torch.zeros_like(x)
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    return gaussian_blur(x, float(blur_sigma))


def make_baseline(
    inputs: torch.Tensor, baseline: str | torch.Tensor = "blur", *, blur_sigma: float = DEFAULT_BLUR_SIGMA
) -> torch.Tensor:
    """The image that "removed" pixels take, one per input, shape ``(N, C, H, W)``.

    Args:
        inputs: ``(N, C, H, W)`` model inputs (already normalised for the model).
        baseline: ``"zero"`` -- all zeros *in the model's input space*; for inputs
            normalised with ImageNet mean/std this is the mean ImageNet colour, not
            black. ``"blur"`` -- a Gaussian blur of the input (sigma ``blur_sigma``
            pixels, :func:`interp_helpers.maps.gaussian_blur`: truncated like scipy at
            radius ``int(3 * sigma + 0.5)``, edges replicated), as in RISE: it removes
            detail but keeps colour and layout, so the images scored stay closer to
            natural ones than with a constant baseline (scattered replaced pixels
            still make artefacts). RISE inserts onto a blurred image and deletes
            towards ``"zero"``. ``"mean"`` -- every pixel set to that image's
            per-channel mean. Or a tensor broadcastable to ``inputs``.
        blur_sigma: Gaussian sigma in pixels for ``"blur"``, > 0 (default 5, the value of
            the RISE reference code, whose kernel is an 11x11 window with zero padding;
            ours is truncated at 3 sigma with replicated edges).

    Returns:
        A new tensor on the inputs' device, in their dtype.
    """
    inputs = check_inputs(inputs)
    checked = _check_baseline(baseline, blur_sigma, inputs.shape)
    return _baseline(inputs.detach(), checked, blur_sigma)


# --------------------------------------------------------------------------- curves


def _curve(
    kind: str,
    model: Any,
    inputs: Any,
    target: Any,
    attribution: AttributionLike,
    *,
    steps: int,
    baseline: str | torch.Tensor,
    batch_size: int,
    reduction: str,
    blur_sigma: float,
) -> CurveResult:
    # the one input preparation: validated inputs and class indices, inputs moved to the model's device
    prep = prepare(model, inputs, target, allow_callable=False)
    module, x, device = prep.module, prep.inputs, prep.device
    inputs = x
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    n, c, h, w = inputs.shape
    targets = prep.targets.host
    explain = attribution if callable(attribution) else None
    amap = None if explain is not None else check_attribution(attribution, inputs.shape)
    checked_baseline = _check_baseline(baseline, blur_sigma, inputs.shape)
    base_name = "custom" if isinstance(baseline, torch.Tensor) else baseline

    # Everything from here on runs on the model's device; the scores come back to the CPU.
    if explain is not None:
        amap = check_attribution(explain(module, x, targets.to(device)), inputs.shape, _EXPLAIN_NAME)
    pixel_scores = reduce_channels(amap.to(device="cpu", dtype=torch.float64), reduction)
    base = _baseline(x, checked_baseline, blur_sigma)

    n_pixels = h * w
    counts = torch.round(torch.linspace(0, 1, steps + 1, dtype=torch.float64) * n_pixels).to(torch.long)
    # rank[i, p] = position of pixel p in image i's importance order (0 = most important).
    # A stable sort keeps ties in raster order, so results are deterministic.
    order = torch.sort(pixel_scores.reshape(n, n_pixels), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_pixels).expand(n, n_pixels).contiguous())
    rank = rank.to(device)
    counts_on_device = counts.to(device)

    n_jobs = n * (steps + 1)
    jobs = torch.arange(n_jobs)
    job_image, job_step = jobs // (steps + 1), jobs % (steps + 1)
    job_target = targets[job_image]
    scores = torch.empty(n_jobs, dtype=torch.float64)
    with frozen_model(module) as m, torch.no_grad():
        for start in range(0, n_jobs, batch_size):
            stop = min(start + batch_size, n_jobs)
            img, step = job_image[start:stop].to(device), job_step[start:stop].to(device)
            # True where a pixel has been removed (deletion) / inserted (insertion) at this step.
            changed = (rank[img] < counts_on_device[step].unsqueeze(1)).view(-1, 1, h, w)
            if kind == "deletion":
                batch = torch.where(changed, base[img], x[img])
            else:
                batch = torch.where(changed, x[img], base[img])
            out = check_logits(m(batch), stop - start, targets)
            probs = torch.softmax(out.double(), dim=1)
            # The target of each job is looked up on the CPU and sent to wherever the logits are.
            picked = probs.gather(1, job_target[start:stop].view(-1, 1).to(out.device))
            scores[start:stop] = picked[:, 0].cpu()

    scores_np = scores.reshape(n, steps + 1).numpy()
    fractions = (counts.double() / n_pixels).numpy()
    auc = (0.5 * (scores_np[:, 1:] + scores_np[:, :-1]) * np.diff(fractions)).sum(axis=1)
    return CurveResult(
        kind=kind,
        baseline=base_name,
        reduction=reduction,
        fractions=frozen_array(fractions),
        scores=frozen_array(scores_np),
        auc=frozen_array(auc),
        target=frozen_array(targets.numpy(), dtype=np.int64),
    )


_CURVE_ARGS = """
    Args:
        model: an ``nn.Module`` returning logits ``(batch, classes)``, or what
            ``load_model`` returns. Left exactly as found (mode, ``requires_grad``,
            ``.grad``, hooks); the perturbed images are scored under
            ``torch.no_grad`` in eval mode. Everything runs on the model's device
            (that of its first parameter or buffer).
        inputs: ``(N, C, H, W)`` float tensor, on any device (moved to the model's).
        target: the class whose probability is recorded: an int for all images or one
            index per image.
        attribution: the map to evaluate, ``(N, C, H, W)``, ``(N, 1, H, W)`` or
            ``(N, H, W)`` (tensor or array, any device); or an explain callable
            ``explain(model, inputs, target) -> Tensor`` following the package's
            protocol (e.g. ``gradient`` or ``functools.partial(expected_gradients,
            background=bg, seed=0)``). The callable is called once, before any
            scoring, with the plain ``nn.Module``, the inputs on the model's device and
            ``target`` validated as a long tensor ``(N,)`` on the model's device; its
            map is used exactly as if it had been passed. Reduced over channels by
            ``reduction``; ties are broken in raster order (stable sort).
        steps: number of steps; step ``k`` changes ``round(k / steps * H * W)`` pixels
            (RISE used 224 pixels per step on 224 x 224 images, i.e. 224 steps; 50 is
            a cheaper default -- the AUC is a trapezoid rule on a coarser grid).
        baseline: ``"zero"``, ``"blur"`` or ``"mean"`` -- see :func:`make_baseline` --
            or a tensor broadcastable to ``inputs``. Defaults as in RISE: ``"zero"``
            for deletion, ``"blur"`` for insertion.
        batch_size: perturbed images per forward pass; the ``N * (steps + 1)``
            images are batched across steps and images. Results do not depend on it.
        reduction: one of :data:`interp_helpers.maps.REDUCTIONS`: ``"abs_sum"``
            (default, ``sum_c |a_c|``), ``"sum"`` (signed, so pixels of negative
            evidence come last) or ``"max_abs"``; see the module docstring.
        blur_sigma: sigma in pixels of the ``"blur"`` baseline (> 0).

    Returns:
        :class:`CurveResult` with ``fractions`` ``(steps + 1,)``, ``scores``
        ``(N, steps + 1)`` (softmax probability of ``target``) and ``auc`` ``(N,)``:
        NumPy arrays, wherever ``inputs`` and the model were.
"""


def deletion_curve(
    model: Any,
    inputs: torch.Tensor,
    target: int | Any,
    attribution: AttributionLike,
    *,
    steps: int = 50,
    baseline: str | torch.Tensor = "zero",
    batch_size: int = 32,
    reduction: str = DEFAULT_REDUCTION,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> CurveResult:
    """Deletion curve (Petsiuk et al. 2018, RISE, Sec. 4): remove the most important pixels first.

    Step 0 is the input itself; at step ``k`` the ``round(k / steps * H * W)``
    top-ranked pixels (all channels) are replaced by the baseline; at the last step
    the image *is* the baseline. The softmax probability of the target class is
    recorded at each step. **Lower AUC is better**: a faithful map points at the
    pixels whose removal destroys the evidence for the class. The default
    baseline is RISE's: zeros of the (normalised) input. ``baseline="blur"`` is a
    softer removal (detail goes, colour stays), a variant.
    """
    return _curve(
        "deletion", model, inputs, target, attribution,
        steps=steps, baseline=baseline, batch_size=batch_size, reduction=reduction, blur_sigma=blur_sigma,
    )


def insertion_curve(
    model: Any,
    inputs: torch.Tensor,
    target: int | Any,
    attribution: AttributionLike,
    *,
    steps: int = 50,
    baseline: str | torch.Tensor = "blur",
    batch_size: int = 32,
    reduction: str = DEFAULT_REDUCTION,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> CurveResult:
    """Insertion curve (Petsiuk et al. 2018, RISE, Sec. 4): reveal the most important pixels first.

    Step 0 is the baseline; at step ``k`` the ``round(k / steps * H * W)``
    top-ranked pixels take their values from the input; at the last step the image
    is the input. The softmax probability of the target class is recorded at each
    step. **Higher AUC is better**: a faithful map finds the pixels that alone
    bring back the evidence for the class. The default baseline is RISE's: a
    blurred copy of the image.
    """
    return _curve(
        "insertion", model, inputs, target, attribution,
        steps=steps, baseline=baseline, batch_size=batch_size, reduction=reduction, blur_sigma=blur_sigma,
    )


deletion_curve.__doc__ = (deletion_curve.__doc__ or "") + _CURVE_ARGS
insertion_curve.__doc__ = (insertion_curve.__doc__ or "") + _CURVE_ARGS


# --------------------------------------------------------------------------- tables


def auc_table(curves: Mapping[str, CurveResult], image_names: Sequence[str] | None = None) -> pd.DataFrame:
    """AUCs of several maps as a table: one row per label, one column per image, then ``mean`` and ``std``.

    ``std`` is the sample standard deviation across images (``ddof=1``; NaN for one image).

    Args:
        curves: label -> :class:`CurveResult`, all over the same images.
        image_names: column names for the images (default ``"image 0"``, ...).
    """
    import pandas as pd

    check_labelled(curves, "curves", CurveResult)
    n = None
    for label, c in curves.items():
        if n is not None and len(c.auc) != n:
            raise ValueError(f"curves[{label!r}] has {len(c.auc)} images, expected {n}")
        n = len(c.auc)
    names = [f"image {i}" for i in range(n)] if image_names is None else [str(v) for v in image_names]
    if len(names) != n:
        raise ValueError(f"image_names must have {n} entries, got {len(names)}")
    table = pd.DataFrame([c.auc for c in curves.values()], index=list(curves), columns=names)
    table["mean"] = table[names].mean(axis=1)
    table["std"] = table[names].std(axis=1, ddof=1) if n > 1 else np.nan
    return table
