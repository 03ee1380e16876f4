"""Does an explanation depend on what the model learned? Cascading model-parameter randomization.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for
Saliency Maps", NeurIPS, Sec. 3.1. The model's stages are re-initialised from
the top (the logits) down, one more per step, and the explanation is
recomputed each time. An explanation that depends on what the model learned
must drift away from the original; one that stays similar is explaining the
input, not the model.

* :func:`cascade_stages` -- every parameter of a model split into depth stages
  (stem, each named stage, head, logits);
* :func:`randomization_test` -- the cascade itself, on a deep copy of the model,
  comparing each step's map to the original with Spearman's rho
  (:func:`interp_helpers.maps.spearman`: NaN for a constant map) and SSIM;
* :func:`randomization_table` -- mean similarity per method and step.

Maps are compared as ``sum_c |a_c|`` (Adebayo et al. sum absolute values),
whatever the sign convention of the method. Quantus's ``MPRT``
(``layer_order="top_down"``) computes the same Spearman similarity;
``tests/test_quantus.py`` checks that the two agree. Nothing here plots (see
:mod:`interp_helpers.plotting.evaluation`).
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._rng import derive_seed, generator
from ..attribution.core import DEFAULT_SEED, prepare
from .faithfulness import frozen_array
from ..maps import reduce_channels, spearman
from ..validation import as_module, check_attribution, check_choice, check_labelled, check_seed

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RandomizationResult",
    "cascade_stages",
    "randomization_table",
    "randomization_test",
]





# --------------------------------------------------------------------------- results


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
        import pandas as pd

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

# --------------------------------------------------------------------------- stages and re-initialisation


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
    """``p ~ N(0, 1 / fan_in)`` with ``fan_in = numel / size(0)`` (``numel`` for 0-/1-D), seeded.

    Drawn on ``p``'s device for CPU and CUDA; on other devices (which may have no
    ``torch.Generator`` of their own) drawn on the CPU and copied over.
    """
    fan_in = p.numel() // p.shape[0] if p.dim() >= 2 else max(p.numel(), 1)
    where = p.device if p.device.type in ("cpu", "cuda") else torch.device("cpu")
    g = generator(seed, *index, device=where)
    with torch.no_grad():
        p.copy_(torch.randn(p.shape, generator=g, device=where, dtype=p.dtype) / math.sqrt(fan_in))


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
    """``sum_c |a_c|`` as ``(N, H, W)`` float64, scaled to ``[0, 1]`` by each image's maximum (zero maps stay zero)."""
    try:
        a = check_attribution(attribution, inputs_shape, "explain(model, inputs, target)")
    except TypeError as exc:
        raise ValueError(f"explain must return a tensor: {exc}") from exc
    m = reduce_channels(a.to(device="cpu", dtype=torch.float64), "abs_sum").numpy()
    peak = m.reshape(m.shape[0], -1).max(axis=1)
    return m / np.where(peak > 0, peak, 1.0)[:, None, None]


def _similarities(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho (NaN where a map is constant) and SSIM between matching ``(H, W)`` maps in ``[0, 1]``."""
    from skimage.metrics import structural_similarity

    n, h, w = ref.shape
    win = min(7, h, w)
    win -= 1 - win % 2  # SSIM needs an odd window no larger than the image
    rho = np.array([spearman(ref[i], cur[i]) for i in range(n)])
    ssim = np.array([structural_similarity(ref[i], cur[i], data_range=1.0, win_size=max(win, 1)) for i in range(n)])
    return rho, ssim


def randomization_test(
    model: Any,
    inputs: torch.Tensor,
    target: int | Any,
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    stages: Mapping[str, nn.Module | str] | None = None,
    seed: int | None = DEFAULT_SEED,
) -> RandomizationResult:
    """Cascading model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

    A deep copy of the model is made (the original is never modified and never
    passed to ``explain``). The explanation of the copy is computed as the
    reference; then the stages are re-initialised one at a time from the deepest
    (nearest the logits) down, cumulatively, and the explanation is recomputed
    after each. For every step the current map is compared to the reference with

    * Spearman rank correlation of ``sum_c |a_c|`` (:func:`interp_helpers.maps.spearman`:
      NaN if either map is constant);
    * SSIM (``skimage.metrics.structural_similarity``, 7x7 window or the largest odd
      window that fits) of the same maps scaled to ``[0, 1]`` by their maxima.

    A method *passes* when the similarity falls as more of the model is randomized:
    its maps depend on what the model learned. A map that stays similar to the
    original is (largely) a function of the input alone, like an edge detector.

    Runs on the model's device (that of its first parameter or buffer): ``inputs``
    may live anywhere, they are moved there; the results are NumPy arrays.

    Args:
        model: an ``nn.Module`` or what ``load_model`` returns.
        inputs: ``(N, C, H, W)`` float tensor, on any device.
        target: class to explain: an int or one index per image (class indices, not a
            score callable: the result records the target of each image).
        explain: ``explain(model, inputs, target) -> attribution``, the package's
            protocol: it receives the (partly randomized) copy as a plain ``nn.Module``,
            the inputs on the model's device and ``target`` after validation, as a long
            tensor of shape ``(N,)`` on the model's device; it returns an ``(N, C, H, W)``,
            ``(N, 1, H, W)`` or ``(N, H, W)`` tensor (any device). A method with data of
            its own is passed with its keywords bound, e.g.
            ``functools.partial(expected_gradients, background=bg, seed=0)``. Give
            stochastic methods a fixed seed, so that the steps differ by the model only.
            ``explain`` sees the *copy*: a method bound to a submodule of the original
            (``partial(expected_gradients, background=bg, layer=model.layer2)``) is refused
            by that method's layer check; explain at the input, or write an ``explain``
            that looks the layer up in the model it receives (``model.get_submodule("layer2")``).
        stages: ordered mapping ``name -> submodule``, shallow to deep, like
            ``LoadedModel.stages``; a value may also be a qualified submodule name or a
            list/tuple of modules/names randomized together. Default: for a model with
            a ``.stages`` mapping (what ``load_model`` returns), ``cascade_stages(model)``
            -- stem, each stage, head and logits, so that every parameter is randomized
            by the last step; otherwise the model's top-level children. Stages without
            parameters are skipped (randomizing them changes nothing).
        seed: seeds the re-initialisation (step ``k`` uses streams derived from
            ``(seed, stage index)``); ``None`` draws one from OS entropy. The global RNG
            state is left as found.

    Returns:
        :class:`RandomizationResult` with ``S = 1 + number of stages`` steps, the first
        being ``"original"``.
    """
    # the one input preparation: validated inputs and class indices, on the model's device
    prep = prepare(model, inputs, target, allow_callable=False)
    module, x, t = prep.module, prep.inputs, prep.targets.indices
    inputs = x
    targets = prep.targets.host
    if not callable(explain):
        raise TypeError(f"explain must be a callable explain(model, inputs, target), got {type(explain).__name__}")
    seed = check_seed(seed)
    resolved = _resolve_stages(module, model, stages)

    work = copy.deepcopy(module)  # on the model's device, like x and t

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
        spearman=frozen_array(np.stack(rhos)),
        ssim=frozen_array(np.stack(ssims)),
        maps=frozen_array(np.stack(maps), dtype=np.float32),
        target=frozen_array(targets.numpy(), dtype=np.int64),
    )


# --------------------------------------------------------------------------- tables


def randomization_table(results: Mapping[str, RandomizationResult], metric: str = "spearman") -> pd.DataFrame:
    """Mean similarity over images: one row per label, one column per step of the cascade.

    Args:
        results: label -> :class:`RandomizationResult`, all over the same steps.
        metric: ``"spearman"`` or ``"ssim"``.
    """
    import pandas as pd

    metric = check_choice(metric, "metric", ("spearman", "ssim"))
    check_labelled(results, "results", RandomizationResult)
    steps = None
    for label, r in results.items():
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
