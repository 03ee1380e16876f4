"""Are explanations faithful to the model, and do they depend on what it learned?

* Deletion and insertion curves: Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for
  Explanation of Black-box Models", BMVC, Sec. 4. Pixels are removed from the image (deletion) or revealed
  on a baseline (insertion), most important first, and the softmax probability of the class is recorded
  after each step: a faithful map makes the deletion curve fall fast (low area under the curve) and the
  insertion curve rise fast (high area). The defaults are those of the RISE reference code
  (github.com/eclique/RISE): delete towards zeros of the normalised input, insert onto a blurred copy
  (sigma 5 px), AUC by the trapezoid rule over the fraction of pixels. RISE blurs with an 11 x 11 window
  and zero padding; ours is ``scipy.ndimage.gaussian_filter`` truncated at 3 sigma with edges repeated.
  ``quantus.PixelFlipping`` computes the same deletion curve (``tests/test_quantus.py``).
* Cascading model-parameter randomization: Adebayo et al. (2018), "Sanity Checks for Saliency Maps",
  NeurIPS, Sec. 3.1. The model's stages are re-initialised from the logits down, one more per step, and
  the explanation recomputed; one that stays similar to the original explains the input, not the model.
  ``quantus.MPRT`` computes the same Spearman similarity.

Pixels are ranked after reducing channels by :func:`~interp_helpers.maps.reduce_channels` (``"abs_sum"``
by default). Everything runs on the model's device; results are read-only NumPy arrays.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity
from torch import nn

from . import _common
from ._common import (
    DEFAULT_SEED,
    as_module,
    as_tensor,
    batch_rows,
    check_choice,
    check_inputs,
    check_int,
    check_method,
    check_positive,
    check_seed,
    check_target,
    frozen_model,
    torch_generator,
)
from .maps import REDUCTIONS, reduce_channels, spearman

_BASELINES = ("zero", "blur", "mean")
_OUTPUT = "method(model, inputs, target)"


def _frozen(values: Any, dtype: Any = np.float64) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


def check_results(results: Any, name: str, kind: type) -> Mapping[str, Any]:
    """``results`` if it is a non-empty mapping label -> ``kind``; randomization results must share their steps."""
    if not isinstance(results, Mapping) or not results:
        raise ValueError(f"{name} must be a non-empty mapping label -> {kind.__name__}, got {results!r:.80}")
    first = next(iter(results.values()))
    for label, value in results.items():
        if not isinstance(value, kind):
            raise TypeError(f"{name}[{label!r}] must be a {kind.__name__}, got {type(value).__name__}")
        if kind is RandomizationResult and value.steps != first.steps:
            raise ValueError(f"{name}[{label!r}] has steps {list(value.steps)}, expected {list(first.steps)}")
    return results


def _prepare(model: Any, inputs: Any, target: Any) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.device]:
    """The module, the checked inputs (where they were), the class indices on the CPU and the model's device."""
    module, inputs = as_module(model), check_inputs(inputs)
    if callable(target) and not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be class indices here (an int or one per image), got {target!r}")
    checked = check_target(target, inputs.shape[0], getattr(model, "num_classes", None), torch.device("cpu"))
    return module, inputs.detach(), checked.index, _common.model_device(module, inputs.device)


def _maps(maps: Any, shape: torch.Size, name: str) -> torch.Tensor:
    """Maps for inputs of ``shape`` ``(N, C, H, W)``: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``, as 4-D."""
    a = as_tensor(maps, name)
    a = a.unsqueeze(1) if a.dim() == 3 else a
    n, c, h, w = shape
    if a.dim() != 4 or a.shape[0] != n or a.shape[1] not in (1, c) or tuple(a.shape[2:]) != (h, w):
        raise ValueError(f"{name} must give maps of shape (N, C, H, W), (N, 1, H, W) or (N, H, W) matching the "
                         f"inputs {tuple(shape)}, got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} gave maps with NaN or inf values")
    return a


# --------------------------------------------------------------------------- deletion and insertion


@dataclass(frozen=True, eq=False)
class CurveResult:
    """A deletion or insertion curve for ``N`` images.

    ``kind`` is ``"deletion"`` or ``"insertion"``; ``baseline`` its name or ``"custom"``; ``reduction`` the
    channel reduction; ``fractions`` ``(steps + 1,)`` the fraction of pixels changed at each step, 0 to 1;
    ``scores`` ``(N, steps + 1)`` the softmax probability of the target; ``auc`` ``(N,)`` the trapezoidal
    area under each curve over ``fractions``; ``target`` ``(N,)`` the class scored for each image.
    """

    kind: str
    baseline: str
    reduction: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    target: np.ndarray

    def __repr__(self) -> str:
        return (f"CurveResult(kind={self.kind!r}, baseline={self.baseline!r}, reduction={self.reduction!r}, "
                f"steps={len(self.fractions) - 1}, auc={np.array2string(self.auc, precision=3)})")


def _baseline(x: torch.Tensor, baseline: Any, blur_sigma: Any) -> torch.Tensor:
    """The image removed pixels take, one per input, where ``x`` is."""
    if isinstance(baseline, torch.Tensor):
        if not baseline.is_floating_point() or not torch.isfinite(baseline).all():
            raise ValueError("baseline must be a finite floating-point tensor")
        try:
            return torch.broadcast_to(baseline.detach().to(x.device, x.dtype), x.shape).clone()
        except RuntimeError:
            raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the inputs "
                             f"{tuple(x.shape)}") from None
    if check_choice(baseline, "baseline", _BASELINES) == "zero":
        return torch.zeros_like(x)
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    s = check_positive(blur_sigma, "blur_sigma")
    a = x.cpu() if x.dtype in (torch.float32, torch.float64) else x.cpu().float()  # scipy has no float16
    blurred = gaussian_filter(a.numpy(), (0, 0, s, s), mode="nearest", truncate=3.0)
    return torch.from_numpy(blurred).to(x.device, x.dtype)


def _fractions(steps: Any) -> torch.Tensor:
    """``steps`` as the fractions of pixels changed at each step: ``k / steps`` for an int, else as given."""
    if isinstance(steps, (str, bytes)) or np.ndim(steps) == 0:
        return torch.linspace(0, 1, check_int(steps, "steps") + 1, dtype=torch.float64)
    try:
        f = torch.as_tensor(np.asarray(steps, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"steps must be an int or a sequence of fractions, got {steps!r}") from None
    if f.dim() != 1 or len(f) < 2 or f[0] != 0 or f[-1] != 1 or not bool((f.diff() > 0).all()):
        raise ValueError(f"steps as fractions must increase strictly from 0 to 1, got {np.asarray(steps).tolist()}")
    return f


def _curve(kind: str, method: Any, model: Any, inputs: Any, target: Any, steps: Any, baseline: Any,
           batch_size: Any, reduction: Any, blur_sigma: Any) -> CurveResult:
    module, inputs, targets, device = _prepare(model, inputs, target)
    fractions, rows = _fractions(steps), batch_rows(batch_size, inputs)
    steps = len(fractions) - 1
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    base = _baseline(inputs, baseline, blur_sigma).to(device)
    x = inputs.to(device)
    if callable(method):
        amap = _maps(method(module, x, targets.to(device)), x.shape, _OUTPUT)
    else:
        amap = _maps(method, x.shape, "method")
    n, _, h, w = x.shape
    counts = torch.round(fractions * h * w).long()
    # rank[i, p]: place of pixel p in image i's order, most important first (ties in raster order)
    order = reduce_channels(amap.to("cpu", torch.float64), reduction).reshape(n, -1)
    order = order.sort(dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w).expand(n, -1).contiguous()).to(device)
    # one job per (image, step), batched across both; "changed" pixels take the baseline (deletion) or the input
    job_image, job_step = torch.arange(n).repeat_interleave(steps + 1), torch.arange(steps + 1).repeat(n)
    keep, put = (x, base) if kind == "deletion" else (base, x)
    scores, top = torch.empty(n * (steps + 1), dtype=torch.float64), int(targets.max())
    with frozen_model(module) as m, torch.no_grad():
        for start in range(0, len(scores), rows):
            img, step = job_image[start:start + rows], job_step[start:start + rows]
            on = img.to(device)
            changed = (rank[on] < counts[step].to(device)[:, None]).view(-1, 1, h, w)
            logits = m(torch.where(changed, put[on], keep[on]))
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != len(img):
                got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise ValueError(f"model must map a batch of {len(img)} images to (N, K) logits, it returned {got}")
            if top >= logits.shape[1]:
                raise ValueError(f"target out of range [0, {logits.shape[1]}) of the model's logits: {top}")
            probs = torch.softmax(logits.double(), dim=1)
            scores[start:start + len(img)] = probs.gather(1, targets[img, None].to(probs.device))[:, 0].cpu()
    scores = scores.reshape(n, steps + 1).numpy()
    fractions = (counts.double() / (h * w)).numpy()
    auc = (0.5 * (scores[:, 1:] + scores[:, :-1]) * np.diff(fractions)).sum(axis=1)
    name = "custom" if isinstance(baseline, torch.Tensor) else baseline
    return CurveResult(kind, name, reduction, _frozen(fractions), _frozen(scores), _frozen(auc),
                       _frozen(targets.numpy(), np.int64))


def deletion_curve(method: Any, model: Any, inputs: torch.Tensor, target: Any, *, steps: Any = 50,
                   baseline: str | torch.Tensor = "zero", batch_size: int | None = None,
                   reduction: str = "abs_sum", blur_sigma: float = 5.0) -> CurveResult:
    """Deletion curve (Petsiuk et al. 2018, RISE, Sec. 4): the most important pixels are removed first.

    Step 0 is the input; at step ``k`` the ``round(k / steps * H * W)`` top-ranked pixels (all channels) take
    the baseline's values (or ``round(steps[k] * H * W)`` for a sequence of fractions); at the last step the
    image is the baseline. **Lower AUC is better.**

    Args:
        method: ``method(model, inputs, target) -> maps`` (called once, with the plain module, the inputs
            on the model's device and the classes as a long tensor there), or the maps themselves:
            ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``, a tensor or an array.
        model: an ``nn.Module`` returning logits, or what ``load_model`` returns; left as found.
        inputs: ``(N, C, H, W)`` float tensor, on any device.
        target: the class scored, an int or one index per image.
        steps: an int: step ``k`` changes ``round(k / steps * H * W)`` pixels (RISE: 224 steps on 224 x 224);
            or the fractions of pixels changed at each step, increasing from 0 to 1 (like ``numpy.histogram``'s
            ``bins``), to refine the grid where the curves move fastest.
        baseline: ``"zero"`` (zeros of the normalised input: the mean colour for ImageNet-normalised
            inputs, RISE's deletion), ``"blur"`` (a Gaussian blur of sigma ``blur_sigma`` pixels, RISE's
            insertion), ``"mean"`` (each image's per-channel mean) or a tensor that broadcasts to ``inputs``.
        batch_size: perturbed images per forward pass (``None``: the package's default).
        reduction: how maps are reduced over channels before ranking (see :mod:`interp_helpers.maps`).
        blur_sigma: sigma in pixels of the ``"blur"`` baseline (RISE's code: 5).
    """
    return _curve("deletion", method, model, inputs, target, steps, baseline, batch_size, reduction, blur_sigma)


def insertion_curve(method: Any, model: Any, inputs: torch.Tensor, target: Any, *, steps: Any = 50,
                    baseline: str | torch.Tensor = "blur", batch_size: int | None = None,
                    reduction: str = "abs_sum", blur_sigma: float = 5.0) -> CurveResult:
    """Insertion curve (Petsiuk et al. 2018, RISE, Sec. 4): the most important pixels are revealed first.

    Step 0 is the baseline (a blurred copy, as in RISE); at step ``k`` the ``round(k / steps * H * W)``
    top-ranked pixels take the input's values; at the last step the image is the input. **Higher AUC is
    better.** Arguments as in :func:`deletion_curve`.
    """
    return _curve("insertion", method, model, inputs, target, steps, baseline, batch_size, reduction, blur_sigma)


def auc_table(curves: Mapping[str, CurveResult], image_names: Sequence[str] | None = None) -> pd.DataFrame:
    """AUCs of several maps: one row per label, one column per image, then ``mean`` and ``std`` (``ddof=1``)."""
    check_results(curves, "curves", CurveResult)
    n = len(next(iter(curves.values())).auc)
    for label, c in curves.items():
        if len(c.auc) != n:
            raise ValueError(f"curves[{label!r}] has {len(c.auc)} images, expected {n}")
    names = [f"image {i}" for i in range(n)] if image_names is None else [str(v) for v in image_names]
    if len(names) != n:
        raise ValueError(f"image_names must have {n} entries, got {len(names)}")
    table = pd.DataFrame([c.auc for c in curves.values()], index=list(curves), columns=names)
    table["mean"] = table[names].mean(axis=1)
    table["std"] = table[names].std(axis=1, ddof=1) if n > 1 else np.nan
    return table


# --------------------------------------------------------------------------- cascading randomization


@dataclass(frozen=True, eq=False)
class RandomizationResult:
    """The outcome of :func:`randomization_test` for ``N`` images over ``S`` steps.

    ``steps``: ``"original"``, then the stage randomized at each step (cumulatively, from the logits down).
    ``spearman`` and ``ssim`` ``(S, N)``: similarity of each step's ``sum_c |a_c|`` map to the original
    (Spearman NaN where a map is constant). ``maps`` ``(S, N, H, W)``: those maps, each scaled to ``[0, 1]``
    by its maximum. ``target`` ``(N,)``: the explained class of each image.
    """

    steps: tuple[str, ...]
    spearman: np.ndarray
    ssim: np.ndarray
    maps: np.ndarray
    target: np.ndarray

    def __repr__(self) -> str:
        return (f"RandomizationResult(steps={list(self.steps)}, images={self.spearman.shape[1]}, "
                f"final spearman={np.array2string(self.spearman[-1], precision=3)})")


def _qualified(module: nn.Module, name: Any, sub: Any) -> str:
    """The qualified name in ``module`` of the stage ``sub`` (a submodule or its qualified name)."""
    if isinstance(sub, str):
        try:
            module.get_submodule(sub)
        except AttributeError:
            raise ValueError(f"stages[{name!r}] names {sub!r}, which is not a submodule of model") from None
        q = sub
    elif isinstance(sub, nn.Module):
        q = next((q for q, m in module.named_modules() if m is sub), None)
        if q is None:
            raise ValueError(f"stages[{name!r}] ({type(sub).__name__}) is not a submodule of model")
    else:
        raise TypeError(f"stages[{name!r}] must hold nn.Modules or qualified names, got {type(sub).__name__}")
    if q == "":
        raise ValueError(f"stages[{name!r}] is the whole model; name its parts instead")
    return q


def cascade_stages(model: Any, stages: Mapping[str, Any] | None = None) -> OrderedDict[str, tuple[str, ...]]:
    """All of a model's parameters in depth stages, shallow to deep, for :func:`randomization_test`.

    Adebayo et al. (2018) randomize *every* layer, starting with the logits; a model's named stages (default
    ``model.stages``, as ``load_model`` gives) leave out the stem, the layers between stages and the head.
    Returns qualified module names: ``"stem"`` (before the first stage), each stage (with the modules up to
    the next one), ``"head"`` (after the last stage) and ``"logits"`` (the last module with parameters),
    empty groups dropped. Assumes submodules are registered in the order they run (torchvision, timm).
    """
    module = as_module(model)
    stages = getattr(model, "stages", None) if stages is None else stages
    if not isinstance(stages, Mapping) or not stages:
        raise ValueError(f"stages must be a non-empty ordered mapping name -> submodule, got {stages!r:.80}; "
                         "pass it, or a model with a .stages mapping")
    tops = {str(name): _qualified(module, name, sub) for name, sub in stages.items()}
    owners = [q for q, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not owners:
        raise ValueError("model has no parameters")

    def stage_of(q: str) -> str | None:
        return next((name for name, top in tops.items() if q == top or q.startswith(top + ".")), None)

    groups: dict[str, list[str]] = {"stem": [], **{name: [] for name in tops}, "head": [], "logits": []}
    if stage_of(owners[-1]) is None:
        groups["logits"].append(owners.pop())
    current, last = "stem", list(tops)[-1]
    for q in owners:
        name = stage_of(q)
        current = name or current
        groups["head" if name is None and current == last else current].append(q)
    return OrderedDict((k, tuple(v)) for k, v in groups.items() if v)


def _resolve_stages(module: nn.Module, model: Any, stages: Any) -> list[tuple[str, tuple[str, ...]]]:
    """``[(name, qualified names)]`` shallow to deep, stages without parameters left out."""
    if stages is None:
        has_stages = isinstance(getattr(model, "stages", None), Mapping)
        stages = cascade_stages(model) if has_stages else dict(module.named_children())
    if not isinstance(stages, Mapping):
        raise TypeError(f"stages must be an ordered mapping name -> submodule(s), got {type(stages).__name__}")
    resolved = []
    for name, subs in stages.items():
        qs = tuple(_qualified(module, name, s) for s in (subs if isinstance(subs, (list, tuple)) else [subs]))
        if not qs:
            raise ValueError(f"stages[{name!r}] is empty")
        if any(True for q in qs for _ in module.get_submodule(q).parameters()):
            resolved.append((str(name), qs))
    if not resolved:
        raise ValueError(f"stages must contain at least one stage with parameters, got {list(stages)}")
    return resolved


def _reinitialise(stage: nn.Module, seed: int, *index: int) -> None:
    """Re-initialise every parameter of ``stage`` from the stream ``(seed, *index)``.

    A module with ``reset_parameters`` uses it (its own default init; batch norm also resets its statistics)
    with the global generators seeded from ``torch_generator(seed, *index, j)`` and restored afterwards.
    Other parameters are drawn from ``N(0, 1 / fan_in)`` (on the CPU for devices without a generator).
    """
    for j, sub in enumerate(stage.modules()):
        own = list(sub.parameters(recurse=False))
        devices = {t.device for t in [*own, *sub.buffers(recurse=False)]}
        if hasattr(sub, "reset_parameters") and all(d.type in ("cpu", "cuda") for d in devices):
            cuda = sorted({d.index for d in devices if d.type == "cuda"})
            s = torch_generator(seed, *index, j).initial_seed()
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                torch.random.default_generator.manual_seed(s)
                for i in cuda:
                    torch.cuda.default_generators[i].manual_seed(s)
                sub.reset_parameters()
            continue
        for k, p in enumerate(own):
            where = p.device if p.device.type in ("cpu", "cuda") else torch.device("cpu")
            fan_in = p.numel() // p.shape[0] if p.dim() >= 2 else max(p.numel(), 1)
            g = torch_generator(seed, *index, j, k, device=where)
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g, device=where, dtype=p.dtype) / math.sqrt(fan_in))


def randomization_test(method: Any, model: Any, inputs: torch.Tensor, target: Any, *,
                       stages: Mapping[str, Any] | None = None,
                       seed: int | None = DEFAULT_SEED) -> RandomizationResult:
    """Cascading model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

    On a deep copy of the model (the original is never changed nor passed to ``method``) the explanation is
    computed, then the stages are re-initialised one at a time from the deepest down, cumulatively, and the
    explanation recomputed after each. Each step's map is compared with the original by Spearman's rho of
    ``sum_c |a_c|`` (:func:`~interp_helpers.maps.spearman`) and by SSIM (scikit-image, a 7 x 7 window or the
    largest odd one that fits) of the same maps scaled to ``[0, 1]``. A method passes when the similarity falls.

    Args:
        method: ``method(model, inputs, target) -> maps``, called with the (partly randomized) copy, the inputs
            on its device and the classes as a long tensor there. Give stochastic methods a fixed seed; a method
            bound to a layer of the original must look the layer up in the model it receives.
        model: an ``nn.Module`` or what ``load_model`` returns.
        inputs: ``(N, C, H, W)`` float tensor, on any device.
        target: the class explained, an int or one index per image.
        stages: ordered mapping name -> submodule, qualified name or a list of them, shallow to deep. Default:
            :func:`cascade_stages` for a model with ``.stages``, else the top-level children. Stages without
            parameters are skipped.
        seed: seeds the re-initialisation of each stage; ``None`` draws one. The global RNG is left as found.
    """
    check_method(method)
    module, inputs, targets, device = _prepare(model, inputs, target)
    seed = check_seed(seed)
    resolved = _resolve_stages(module, model, stages)
    work = copy.deepcopy(module)
    x, t = inputs.to(device), targets.to(device)

    def run() -> np.ndarray:
        m = reduce_channels(_maps(method(work, x, t), x.shape, _OUTPUT).to("cpu", torch.float64)).numpy()
        peak = m.reshape(len(m), -1).max(axis=1)
        return m / np.where(peak > 0, peak, 1.0)[:, None, None]

    names, maps = ["original"], [run()]
    for k, (name, qualified) in enumerate(reversed(resolved)):
        for part, q in enumerate(qualified):
            _reinitialise(work.get_submodule(q), seed, len(resolved) - 1 - k, part)
        names.append(name)
        maps.append(run())
    win = min(7, *maps[0].shape[1:])
    win -= 1 - win % 2  # SSIM needs an odd window no larger than the map
    pairs = [list(zip(maps[0], step)) for step in maps]
    rho = [[spearman(ref, cur) for ref, cur in step] for step in pairs]
    ssim = [[structural_similarity(ref, cur, data_range=1.0, win_size=max(win, 1)) for ref, cur in step]
            for step in pairs]
    return RandomizationResult(tuple(names), _frozen(rho), _frozen(ssim), _frozen(maps, np.float32),
                               _frozen(targets.numpy(), np.int64))


def randomization_table(results: Mapping[str, RandomizationResult], metric: str = "spearman") -> pd.DataFrame:
    """Mean similarity over images (NaN left out): one row per label, one column per step of the cascade."""
    metric = check_choice(metric, "metric", ("spearman", "ssim"))
    check_results(results, "results", RandomizationResult)
    rows = [np.ma.masked_invalid(getattr(r, metric)).mean(axis=1).filled(np.nan) for r in results.values()]
    return pd.DataFrame(rows, index=list(results), columns=list(next(iter(results.values())).steps))
