"""Is an attribution map faithful to the model? Two families of checks.

* **Deletion and insertion curves** -- Petsiuk, Das & Saenko (2018), "RISE:
  Randomized Input Sampling for Explanation of Black-box Models", BMVC,
  Sec. 4 ("causal metrics"). Pixels are removed from the image (deletion) or
  revealed on top of a baseline (insertion) from most to least important
  according to the map, and the class probability is recorded after each
  step. A faithful map makes the deletion curve fall fast (low area under the
  curve) and the insertion curve rise fast (high area).
* **Cascading model-parameter randomization** -- Adebayo, Gilmer, Muelly,
  Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
  Sec. 3.1. The model's stages are re-initialised from the top (the logits)
  down, one more per step, and the explanation is recomputed each time. An
  explanation that depends on what the model learned must drift away from
  the original; one that stays similar is explaining the input, not the model.

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
with zero padding, so the border darkens), ours a sigma-5 Gaussian truncated
at 3 sigma with replicated edges; and RISE removes 224 pixels per step (224
steps on 224x224), while ``steps`` here is a parameter (a coarser grid).

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

Everything here computes; nothing plots (see :mod:`interp_helpers.plotting.evaluation`).

Channel reduction. Both families rank *pixels*, so a ``(C, H, W)`` map is
reduced over channels first. The default is ``sum_c |a_c|`` ("abs_sum"):
it is the convention of the saliency-map literature (Simonyan et al. 2014 take
the max of ``|grad|``; Smilkov et al. 2017 and Adebayo et al. 2018 sum
absolute values), it puts signed maps (gradient, gradient x input, expected
gradients) and non-negative ones (SmoothGrad², VarGrad) on one footing, and for
a perturbation towards a blurred or mean image the direction of the change of
each pixel -- hence which gradient sign helps -- is not known in advance.
Its cost: pixels of strong *negative* evidence count as important.
``reduction="sum"`` (signed: positive evidence first, negative evidence last)
is available for deletion and insertion; the randomization test always uses
``|a|`` as Adebayo et al. do.
"""
from __future__ import annotations

import copy
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from ..validation import as_module, check_inputs, check_logits, check_positive_int, check_targets

from ..hooks import frozen_model
from ..validation import check_seed
from .._rng import derive_seed, generator

__all__ = [
    "CurveResult",
    "RandomizationResult",
    "BASELINES",
    "REDUCTIONS",
    "auc_table",
    "cascade_stages",
    "make_baseline",
    "deletion_curve",
    "insertion_curve",
    "randomization_table",
    "randomization_test",
]

#: Names accepted by ``baseline=`` (a tensor broadcastable to the inputs is accepted too).
BASELINES = ("zero", "blur", "mean")
#: Names accepted by ``reduction=``.
REDUCTIONS = ("abs_sum", "sum")

#: RISE's insertion metric starts from a blurred image; their code blurs with a
#: Gaussian of sigma 5 px (on 224x224 inputs). We keep sigma 5 and truncate at 3 sigma.
DEFAULT_BLUR_SIGMA = 5.0


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class CurveResult:
    """A deletion or insertion curve for ``N`` images.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        baseline: the baseline's name (``"zero"``, ``"blur"``, ``"mean"``) or ``"custom"``.
        reduction: how the attribution was reduced over channels (``"abs_sum"`` or ``"sum"``).
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


@dataclass(frozen=True, eq=False)
class RandomizationResult:
    """The outcome of :func:`randomization_test` for ``N`` images over ``S`` steps.

    Step 0 is the unrandomized model (``steps[0] == "original"``, similarity 1 by
    construction); step ``k >= 1`` has the ``k`` deepest stages re-initialised and
    is named after the stage randomized at that step (the randomization is
    cumulative: step ``k`` includes all stages of steps ``1..k``).

    Attributes:
        steps: ``S`` step names.
        spearman: shape ``(S, N)``, Spearman rank correlation between the original
            and the current ``sum_c |a_c|`` map (NaN where a map is constant).
        ssim: shape ``(S, N)``, SSIM (scikit-image) between the two maps, each scaled to
            ``[0, 1]`` by its maximum.
        maps: shape ``(S, N, H, W)``, the scaled ``sum_c |a_c|`` maps themselves (to plot).
        target: shape ``(N,)``, the explained class of each image.
    """

    steps: tuple[str, ...]
    spearman: np.ndarray
    ssim: np.ndarray
    maps: np.ndarray
    target: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per (step, image): ``step_index``, ``step``, ``image``, ``spearman``, ``ssim``."""
        n_steps, n = self.spearman.shape
        return pd.DataFrame(
            {
                "step_index": np.repeat(np.arange(n_steps), n),
                "step": np.repeat(np.asarray(self.steps, dtype=object), n),
                "image": np.tile(np.arange(n), n_steps),
                "spearman": self.spearman.reshape(-1),
                "ssim": self.ssim.reshape(-1),
            }
        )

    def __repr__(self) -> str:
        return (
            f"RandomizationResult(steps={list(self.steps)}, images={self.spearman.shape[1]}, "
            f"final spearman={np.array2string(self.spearman[-1], precision=3)})"
        )


def _frozen_array(a: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------- checks


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_sigma(value: Any, name: str = "blur_sigma") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    return value


def _pixel_map(attribution: Any, inputs_shape: torch.Size, reduction: str, name: str) -> torch.Tensor:
    """Reduce an ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` map to ``(N, H, W)`` float64 on CPU."""
    a = _as_tensor(attribution, name).detach()
    n, _, h, w = inputs_shape
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.dim() != 4 or a.shape[0] != n or tuple(a.shape[2:]) != (h, w) or a.shape[1] not in (1, inputs_shape[1]):
        raise ValueError(
            f"{name} must have shape (N, C, H, W), (N, 1, H, W) or (N, H, W) matching the inputs "
            f"{tuple(inputs_shape)}, got {tuple(a.shape)}"
        )
    if a.is_complex() or a.dtype == torch.bool:
        raise ValueError(f"{name} must be a real-valued tensor, got dtype {a.dtype}")
    a = a.to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values")
    if reduction == "abs_sum":
        return a.abs().sum(dim=1)
    return a.sum(dim=1)


# --------------------------------------------------------------------------- baselines


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel, truncated at 3 sigma, edges replicated.

    Matches ``scipy.ndimage.gaussian_filter(..., sigma, mode="nearest", truncate=3.0)``
    on the two spatial axes.
    """
    radius = int(3.0 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(dtype=x.dtype, device=x.device)
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = nn.functional.pad(y, (radius, radius, 0, 0), mode="replicate")
    y = nn.functional.conv2d(y, kernel.view(1, 1, 1, -1))
    y = nn.functional.pad(y, (0, 0, radius, radius), mode="replicate")
    y = nn.functional.conv2d(y, kernel.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def make_baseline(
    inputs: torch.Tensor, baseline: str | torch.Tensor = "blur", *, blur_sigma: float = DEFAULT_BLUR_SIGMA
) -> torch.Tensor:
    """The image that "removed" pixels take, one per input, shape ``(N, C, H, W)``.

    Args:
        inputs: ``(N, C, H, W)`` model inputs (already normalised for the model).
        baseline: ``"zero"`` -- all zeros *in the model's input space*; for inputs
            normalised with ImageNet mean/std this is the mean ImageNet colour, not
            black. ``"blur"`` -- a Gaussian blur of the input (sigma ``blur_sigma``
            pixels, truncated at 3 sigma, edges replicated), as in RISE: it removes
            detail but keeps colour and layout, so the images scored stay closer to
            natural ones than with a constant baseline (scattered replaced pixels
            still make artefacts). RISE inserts onto a blurred image and deletes
            towards ``"zero"``. ``"mean"`` -- every pixel set to that image's
            per-channel mean. Or a tensor broadcastable to ``inputs``.
        blur_sigma: Gaussian sigma in pixels for ``"blur"`` (default 5, the value of
            the RISE reference code, whose kernel is an 11x11 window with zero padding;
            ours is truncated at 3 sigma with replicated edges).
    """
    inputs = check_inputs(inputs)
    if isinstance(baseline, torch.Tensor):
        if not baseline.is_floating_point() or not torch.isfinite(baseline).all():
            raise ValueError("baseline must be a finite floating-point tensor")
        try:
            b = torch.broadcast_to(baseline.detach().to(inputs.device, inputs.dtype), inputs.shape)
        except RuntimeError as exc:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to the inputs {tuple(inputs.shape)}"
            ) from exc
        return b.clone()
    name = _check_choice(baseline, "baseline", BASELINES)
    x = inputs.detach()
    if name == "zero":
        return torch.zeros_like(x)
    if name == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    return _gaussian_blur(x, _check_sigma(blur_sigma))


# --------------------------------------------------------------------------- curves


def _curve(
    kind: str,
    model: Any,
    inputs: Any,
    attribution: Any,
    target: Any,
    *,
    steps: int,
    baseline: str | torch.Tensor,
    batch_size: int,
    reduction: str,
    blur_sigma: float,
) -> CurveResult:
    module = as_module(model)
    inputs = check_inputs(inputs)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    reduction = _check_choice(reduction, "reduction", REDUCTIONS)
    n, c, h, w = inputs.shape
    targets = check_targets(target, n, getattr(model, "num_classes", None))
    pixel_scores = _pixel_map(attribution, inputs.shape, reduction, "attribution")
    base = make_baseline(inputs, baseline, blur_sigma=blur_sigma)
    base_name = "custom" if isinstance(baseline, torch.Tensor) else baseline
    x = inputs.detach()

    n_pixels = h * w
    counts = torch.round(torch.linspace(0, 1, steps + 1, dtype=torch.float64) * n_pixels).to(torch.long)
    # rank[i, p] = position of pixel p in image i's importance order (0 = most important).
    # A stable sort keeps ties in raster order, so results are deterministic.
    order = torch.sort(pixel_scores.reshape(n, n_pixels), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_pixels).expand(n, n_pixels).contiguous())
    rank = rank.to(x.device)
    counts = counts.to(x.device)

    n_jobs = n * (steps + 1)
    scores = torch.empty(n_jobs, dtype=torch.float64)
    with frozen_model(module) as m, torch.no_grad():
        for start in range(0, n_jobs, batch_size):
            jobs = torch.arange(start, min(start + batch_size, n_jobs), device=x.device)
            img, step = jobs // (steps + 1), jobs % (steps + 1)
            # True where a pixel has been removed (deletion) / inserted (insertion) at this step.
            changed = (rank[img] < counts[step].unsqueeze(1)).view(-1, 1, h, w)
            if kind == "deletion":
                batch = torch.where(changed, base[img], x[img])
            else:
                batch = torch.where(changed, x[img], base[img])
            out = check_logits(m(batch), batch.shape[0], targets)
            probs = torch.softmax(out.double(), dim=1)
            scores[start : start + len(jobs)] = probs[torch.arange(len(jobs)), targets.to(out.device)[img]].cpu()

    scores_np = scores.reshape(n, steps + 1).numpy()
    fractions = (counts.cpu().double() / n_pixels).numpy()
    auc = (0.5 * (scores_np[:, 1:] + scores_np[:, :-1]) * np.diff(fractions)).sum(axis=1)
    return CurveResult(
        kind=kind,
        baseline=base_name,
        reduction=reduction,
        fractions=_frozen_array(fractions),
        scores=_frozen_array(scores_np),
        auc=_frozen_array(auc),
        target=_frozen_array(targets.numpy(), dtype=np.int64),
    )


_CURVE_ARGS = """
    Args:
        model: an ``nn.Module`` returning logits ``(batch, classes)``, or what
            ``load_model`` returns. Left exactly as found (mode, ``requires_grad``,
            ``.grad``, hooks); run under ``torch.no_grad`` in eval mode.
        inputs: ``(N, C, H, W)`` float tensor on the model's device.
        attribution: the map to evaluate, ``(N, C, H, W)``, ``(N, 1, H, W)`` or
            ``(N, H, W)`` (tensor or array). Reduced over channels by ``reduction``;
            ties are broken in raster order (stable sort).
        target: the class whose probability is recorded: an int for all images or one
            index per image.
        steps: number of steps; step ``k`` changes ``round(k / steps * H * W)`` pixels
            (RISE used 224 pixels per step on 224 x 224 images, i.e. 224 steps; 50 is
            a cheaper default -- the AUC is a trapezoid rule on a coarser grid).
        baseline: ``"zero"``, ``"blur"`` or ``"mean"`` -- see :func:`make_baseline` --
            or a tensor broadcastable to ``inputs``. Defaults as in RISE: ``"zero"``
            for deletion, ``"blur"`` for insertion.
        batch_size: perturbed images per forward pass; the ``N * (steps + 1)``
            images are batched across steps and images. Results do not depend on it.
        reduction: ``"abs_sum"`` (default, ``sum_c |a_c|``) or ``"sum"`` (signed, so
            pixels of negative evidence come last); see the module docstring.
        blur_sigma: sigma in pixels of the ``"blur"`` baseline.

    Returns:
        :class:`CurveResult` with ``fractions`` ``(steps + 1,)``, ``scores``
        ``(N, steps + 1)`` (softmax probability of ``target``) and ``auc`` ``(N,)``.
"""


def deletion_curve(
    model: Any,
    inputs: torch.Tensor,
    attribution: torch.Tensor | np.ndarray,
    target: int | Any,
    *,
    steps: int = 50,
    baseline: str | torch.Tensor = "zero",
    batch_size: int = 32,
    reduction: str = "abs_sum",
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
        "deletion", model, inputs, attribution, target,
        steps=steps, baseline=baseline, batch_size=batch_size, reduction=reduction, blur_sigma=blur_sigma,
    )


def insertion_curve(
    model: Any,
    inputs: torch.Tensor,
    attribution: torch.Tensor | np.ndarray,
    target: int | Any,
    *,
    steps: int = 50,
    baseline: str | torch.Tensor = "blur",
    batch_size: int = 32,
    reduction: str = "abs_sum",
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
        "insertion", model, inputs, attribution, target,
        steps=steps, baseline=baseline, batch_size=batch_size, reduction=reduction, blur_sigma=blur_sigma,
    )


deletion_curve.__doc__ = (deletion_curve.__doc__ or "") + _CURVE_ARGS
insertion_curve.__doc__ = (insertion_curve.__doc__ or "") + _CURVE_ARGS


# --------------------------------------------------------------------------- randomization


def _owners(module: nn.Module) -> list[str]:
    """Qualified names of the submodules that own parameters directly, in registration order."""
    return [q for q, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]


def cascade_stages(
    model: Any, stages: Mapping[str, nn.Module | str] | None = None
) -> "OrderedDict[str, tuple[str, ...]]":
    """Split *all* of a model's parameters into depth stages for :func:`randomization_test`.

    ``LoadedModel.stages`` names the network's main blocks, but the layers before
    the first block (the stem), between blocks (e.g. DenseNet's transitions) and
    after the last one (the head and the logits layer) own parameters too, and
    Adebayo et al. (2018) randomize *every* layer, starting with the logits. This
    returns, shallow -> deep::

        "stem"    -> modules registered before the first stage
        <stage k> -> stage k, plus modules registered after it and before stage k+1
        "head"    -> modules after the last stage, except the last one
        "logits"  -> the last module with parameters (the classifier), unless a
                     stage already contains it

    as qualified module names (empty groups are dropped). It relies on submodules
    being registered in the order they run, which holds for torchvision's and
    timm's CNNs; check the result on other models.

    Args:
        model: an ``nn.Module`` or what ``load_model`` returns.
        stages: ordered mapping name -> submodule (or qualified name), shallow -> deep.
            Default: ``model.stages``.
    """
    module = as_module(model)
    if stages is None:
        stages = getattr(model, "stages", None)
    if not isinstance(stages, Mapping) or not stages:
        raise ValueError(
            f"stages must be a non-empty ordered mapping name -> submodule, got {stages!r}; "
            "pass it, or a model with a .stages mapping"
        )
    tops = {}
    for name, groups in _resolve_stages(module, None, stages, keep_empty=True):
        if len(groups) != 1:
            raise ValueError(f"stages[{name!r}] must be a single submodule here, got {len(groups)}")
        tops[name] = groups[0]
    owners = _owners(module)
    if not owners:
        raise ValueError("model has no parameters")

    def stage_of(q: str) -> str | None:
        for name, top in tops.items():
            if q == top or q.startswith(top + "."):
                return name
        return None

    groups: dict[str, list[str]] = {"stem": [], **{name: [] for name in tops}, "head": [], "logits": []}
    current = "stem"
    last_stage = list(tops)[-1]
    seen_last = False
    logits_outside = stage_of(owners[-1]) is None
    for q in owners[:-1] if logits_outside else owners:
        name = stage_of(q)
        if name is not None:
            current = name
            seen_last = seen_last or name == last_stage
            groups[name].append(q)
        elif seen_last:
            groups["head"].append(q)
        else:
            groups[current].append(q)
    if logits_outside:
        groups["logits"].append(owners[-1])
    return OrderedDict((k, tuple(v)) for k, v in groups.items() if v)


def _resolve_stages(
    module: nn.Module, model: Any, stages: Any, *, keep_empty: bool = False
) -> list[tuple[str, tuple[str, ...]]]:
    """``[(stage_name, (qualified_module_name, ...)), ...]`` shallow -> deep.

    Stages owning no parameters are dropped unless ``keep_empty``.
    """
    qualified = {id(m): q for q, m in module.named_modules()}
    if stages is None:
        if isinstance(getattr(model, "stages", None), Mapping):
            stages = cascade_stages(model)
        else:
            stages = dict(module.named_children())
    if not isinstance(stages, Mapping):
        raise ValueError(
            f"stages must be an ordered mapping name -> submodule(s) or qualified name(s), got {type(stages).__name__}"
        )

    def one(name: Any, sub: Any) -> str:
        if isinstance(sub, str):
            try:
                module.get_submodule(sub)
            except AttributeError as exc:
                raise ValueError(f"stages[{name!r}] names {sub!r}, which is not a submodule of model") from exc
            q = sub
        elif isinstance(sub, nn.Module):
            if id(sub) not in qualified:
                raise ValueError(f"stages[{name!r}] ({type(sub).__name__}) is not a submodule of model")
            q = qualified[id(sub)]
        else:
            raise ValueError(
                f"stages[{name!r}] must hold nn.Modules or qualified names, got {type(sub).__name__}"
            )
        if q == "":
            raise ValueError(f"stages[{name!r}] is the whole model; name its parts instead")
        return q

    resolved = []
    for name, sub in stages.items():
        subs = list(sub) if isinstance(sub, (list, tuple)) else [sub]
        if not subs:
            raise ValueError(f"stages[{name!r}] is empty")
        qs = tuple(one(name, s) for s in subs)
        has_params = any(True for q in qs for _ in module.get_submodule(q).parameters())
        if has_params or keep_empty:
            resolved.append((str(name), qs))
    if not resolved:
        raise ValueError(f"stages must contain at least one stage with parameters, got {list(stages)}")
    return resolved


def _normal_init_(p: torch.Tensor, seed: int, *index: int) -> None:
    """``p ~ N(0, 1 / fan_in)`` with ``fan_in = numel / size(0)`` (``numel`` for 0-/1-D), seeded."""
    fan_in = p.numel() // p.shape[0] if p.dim() >= 2 else max(p.numel(), 1)
    g = generator(seed, *index, device=p.device)
    with torch.no_grad():
        p.copy_(torch.randn(p.shape, generator=g, device=p.device, dtype=p.dtype) / math.sqrt(fan_in))


def _reinitialise(stage: nn.Module, seed: int, *index: int) -> None:
    """Re-initialise every parameter of ``stage`` reproducibly from ``(seed, *index)``.

    Modules with ``reset_parameters`` use it (their own default init, e.g. Kaiming
    uniform for convolutions, ones/zeros and reset running statistics for batch
    norm). That method draws from the global RNG, so it runs inside
    ``torch.random.fork_rng`` with the generators of the devices involved seeded
    from ``derive_seed(seed, *index, module_index)``: the global state is
    restored afterwards. Parameters of modules without ``reset_parameters`` are
    drawn from :func:`_normal_init_` with a private ``torch.Generator``.
    """
    for j, sub in enumerate(stage.modules()):
        own = list(sub.parameters(recurse=False))
        reset = getattr(sub, "reset_parameters", None)
        devices = {t.device for t in [*own, *sub.buffers(recurse=False)]}
        if callable(reset) and all(d.type in ("cpu", "cuda") for d in devices):
            s = derive_seed(seed, *index, j)
            cuda = sorted({d.index if d.index is not None else torch.cuda.current_device()
                           for d in devices if d.type == "cuda"})
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                torch.random.default_generator.manual_seed(s)
                for i in cuda:
                    torch.cuda.default_generators[i].manual_seed(s)
                reset()
        else:
            for k, p in enumerate(own):
                _normal_init_(p, seed, *index, j, k)


def _scaled_abs_map(attribution: Any, inputs_shape: torch.Size) -> np.ndarray:
    """``sum_c |a_c|`` scaled to ``[0, 1]`` by each image's maximum (zero maps stay zero)."""
    try:
        m = _pixel_map(attribution, inputs_shape, "abs_sum", "explain(...)").numpy()
    except TypeError as exc:
        raise ValueError(f"explain must return a tensor: {exc}") from exc
    peak = m.reshape(m.shape[0], -1).max(axis=1)
    return m / np.where(peak > 0, peak, 1.0)[:, None, None]


def _similarities(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, h, w = ref.shape
    win = min(7, h, w)
    win -= 1 - win % 2  # SSIM needs an odd window no larger than the image
    rho = np.empty(n)
    ssim = np.empty(n)
    for i in range(n):
        a, b = ref[i].ravel(), cur[i].ravel()
        rho[i] = np.nan if a.min() == a.max() or b.min() == b.max() else spearmanr(a, b)[0]
        ssim[i] = structural_similarity(ref[i], cur[i], data_range=1.0, win_size=max(win, 1))
    return rho, ssim


def randomization_test(
    model: Any,
    inputs: torch.Tensor,
    target: int | Any,
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    stages: Mapping[str, nn.Module | str] | None = None,
    seed: int | None = 0,
) -> RandomizationResult:
    """Cascading model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

    A deep copy of the model is made (the original is never modified and never
    passed to ``explain``). The explanation of the copy is computed as the
    reference; then the stages are re-initialised one at a time from the deepest
    (nearest the logits) down, cumulatively, and the explanation is recomputed
    after each. For every step the current map is compared to the reference with

    * Spearman rank correlation of ``sum_c |a_c|`` (NaN if either map is constant);
    * SSIM (``skimage.metrics.structural_similarity``, 7x7 window or the largest odd
      window that fits) of the same maps scaled to ``[0, 1]`` by their maxima.

    A method *passes* when the similarity falls as more of the model is randomized:
    its maps depend on what the model learned. A map that stays similar to the
    original is (largely) a function of the input alone, like an edge detector.

    Args:
        model: an ``nn.Module`` or what ``load_model`` returns.
        inputs: ``(N, C, H, W)`` float tensor on the model's device.
        target: class to explain: an int or one index per image; ``explain`` receives
            it as a long tensor of shape ``(N,)``.
        explain: ``explain(model, inputs, target) -> attribution`` returning an
            ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` tensor; it receives the
            (partly randomized) copy as a plain ``nn.Module``. Give stochastic methods
            a fixed seed inside ``explain``, so that the steps differ by the model only.
        stages: ordered mapping ``name -> submodule``, shallow to deep, like
            ``LoadedModel.stages``; a value may also be a qualified submodule name or a
            list/tuple of modules/names randomized together. Default: for a model with
            a ``.stages`` mapping (what ``load_model`` returns), ``cascade_stages(model)``
            -- stem, each stage, head and logits, so that every parameter is randomized
            by the last step; otherwise the model's top-level children. Stages without
            parameters are skipped (randomizing them changes nothing).
        seed: seeds the re-initialisation (step ``k`` uses streams derived from
            ``(seed, stage index)``); the global RNG state is left as found.

    Returns:
        :class:`RandomizationResult` with ``S = 1 + number of stages`` steps, the first
        being ``"original"``.
    """
    module = as_module(model)
    inputs = check_inputs(inputs)
    if not callable(explain):
        raise TypeError(f"explain must be a callable explain(model, inputs, target), got {type(explain).__name__}")
    seed = check_seed(seed)
    targets = check_targets(target, inputs.shape[0], getattr(model, "num_classes", None))
    resolved = _resolve_stages(module, model, stages)

    work = copy.deepcopy(module)
    x = inputs.detach()
    t = targets.to(x.device)

    def run() -> np.ndarray:
        return _scaled_abs_map(explain(work, x, t), inputs.shape)

    ref = run()
    names = ["original"]
    maps = [ref]
    rho0, ssim0 = _similarities(ref, ref)  # 1 and 1, or NaN where the reference map is constant
    rhos, ssims = [rho0], [ssim0]
    for k, (name, qualified) in enumerate(reversed(resolved)):
        stage_index = len(resolved) - 1 - k  # index in shallow -> deep order, independent of the cascade
        for part, q in enumerate(qualified):
            _reinitialise(work.get_submodule(q), seed, stage_index, part)
        cur = run()
        rho, ssim = _similarities(ref, cur)
        names.append(name)
        maps.append(cur)
        rhos.append(rho)
        ssims.append(ssim)
    return RandomizationResult(
        steps=tuple(names),
        spearman=_frozen_array(np.stack(rhos)),
        ssim=_frozen_array(np.stack(ssims)),
        maps=_frozen_array(np.stack(maps), dtype=np.float32),
        target=_frozen_array(targets.numpy(), dtype=np.int64),
    )


# --------------------------------------------------------------------------- tables


def auc_table(curves: Mapping[str, CurveResult], image_names: Sequence[str] | None = None) -> pd.DataFrame:
    """AUCs of several maps as a table: one row per label, one column per image, then ``mean`` and ``std``.

    ``std`` is the sample standard deviation across images (``ddof=1``; NaN for one image).

    Args:
        curves: label -> :class:`CurveResult`, all over the same images.
        image_names: column names for the images (default ``"image 0"``, ...).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty mapping label -> CurveResult, got {curves!r}")
    n = None
    for label, c in curves.items():
        if not isinstance(c, CurveResult):
            raise ValueError(f"curves[{label!r}] must be a CurveResult, got {type(c).__name__}")
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


def randomization_table(results: Mapping[str, RandomizationResult], metric: str = "spearman") -> pd.DataFrame:
    """Mean similarity over images: one row per label, one column per step of the cascade.

    Args:
        results: label -> :class:`RandomizationResult`, all over the same steps.
        metric: ``"spearman"`` or ``"ssim"``.
    """
    if not isinstance(metric, str) or metric not in ("spearman", "ssim"):
        raise ValueError(f"metric must be 'spearman' or 'ssim', got {metric!r}")
    if not isinstance(results, Mapping) or not results:
        raise ValueError(f"results must be a non-empty mapping label -> RandomizationResult, got {results!r}")
    steps = None
    for label, r in results.items():
        if not isinstance(r, RandomizationResult):
            raise ValueError(f"results[{label!r}] must be a RandomizationResult, got {type(r).__name__}")
        if steps is not None and r.steps != steps:
            raise ValueError(f"results[{label!r}] has steps {list(r.steps)}, expected {list(steps)}")
        steps = r.steps
    rows = []
    for r in results.values():
        values = getattr(r, metric)
        finite = np.isfinite(values)
        sums = np.where(finite, values, 0.0).sum(axis=1)
        counts = finite.sum(axis=1)
        rows.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))  # NaN-aware mean, no warning
    return pd.DataFrame(rows, index=list(results), columns=list(steps))
