"""Gradient saliency maps and SmoothGrad.

* :func:`gradient` -- the vanilla gradient of a class score with respect to the
  input pixels (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional
  Networks: Visualising Image Classification Models and Saliency Maps";
  Baehrens et al. 2010, "How to Explain Individual Classification Decisions").
* :func:`gradient_x_input` -- the gradient multiplied element-wise by the input
  (Shrikumar et al. 2016, "Not Just a Black Box: Learning Important Features
  Through Propagating Activation Differences").
* :func:`smoothgrad` -- the gradient averaged over noisy copies of the input
  (Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise
  by adding noise"), its squared variant and VarGrad (Adebayo et al. 2018,
  "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to
  Parameter Values").

Noise-averaging is written once, in :func:`_noise_averaged`, over any base
per-batch attribution function ``base(module, batch, targets) -> tensor`` of the
batch's shape; :func:`smoothgrad` is that loop over :func:`_input_gradient`.

Every function here returns a detached tensor of the inputs' shape, leaves the
model exactly as found (see :func:`interp_helpers.validation.frozen_model`),
computes no parameter gradients and never touches the global RNG.
"""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import _rng
from ..validation import as_module, check_inputs, check_logits, check_positive_int, check_targets, check_seed
from ..hooks import frozen_model
from ..memory import memory_batch_size

__all__ = [
    "VARIANTS",
    "DEFAULT_PIXEL_BUDGET",
    "add_noise",
    "default_batch_size",
    "gradient",
    "gradient_x_input",
    "noise_sigma",
    "smoothgrad",
    "smoothgrad_checkpoints",
]

#: The noise-averaged statistics :func:`smoothgrad` can return.
VARIANTS: tuple[str, ...] = ("smoothgrad", "smoothgrad_sq", "vargrad")

#: Pixels per forward/backward pass when ``batch_size`` is not given: eight
#: ImageNet-size (224 x 224) images. Activation memory of a backward pass grows
#: linearly with the pixels in the batch; at this budget a ResNet-50 holds about
#: 1 GB of activations, and on a CPU larger batches are not faster.
DEFAULT_PIXEL_BUDGET: int = 8 * 224 * 224

BaseAttribution = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

TargetLike = int | Sequence[int] | torch.Tensor


# --------------------------------------------------------------------------- checks


def _check_noise_level(noise_level: Any) -> float:
    if isinstance(noise_level, bool) or not isinstance(noise_level, numbers.Real):
        raise ValueError(f"noise_level must be a real number >= 0, got {noise_level!r}")
    value = float(noise_level)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level!r}")
    return value


def _check_batch_size(batch_size: Any, inputs: torch.Tensor, total: int, module: nn.Module) -> int:
    if batch_size is None:  # the pixel budget, lowered where the model's activations would not fit the memory budget
        return memory_batch_size(module, inputs, cap=default_batch_size(inputs, total))
    return check_positive_int(batch_size, "batch_size")


def _prepare(model: Any, inputs: Any, target: Any) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    module = as_module(model)
    inputs = check_inputs(inputs)
    num_classes = getattr(model, "num_classes", None)
    targets = check_targets(target, inputs.shape[0], num_classes).to(inputs.device)
    return module, inputs, targets


def default_batch_size(inputs: torch.Tensor, total: int) -> int:
    """The chunk size used when ``batch_size=None``: :data:`DEFAULT_PIXEL_BUDGET` pixels per pass.

    Eight images at 224 x 224, more for smaller images, never more than ``total``
    (the number of model evaluations requested) and never fewer than one.
    """
    pixels = int(inputs.shape[-1]) * int(inputs.shape[-2])
    return max(1, min(int(total), DEFAULT_PIXEL_BUDGET // max(pixels, 1)))


# --------------------------------------------------------------------------- base methods


def _input_gradient(module: nn.Module, batch: torch.Tensor, targets: torch.Tensor, *,
                    max_target: int | None = None) -> torch.Tensor:
    """d logit[target] / d batch for every row of ``batch`` (one backward pass).

    Rows are independent because the model is in eval mode, so the gradient of
    the summed target logits is, row by row, each row's own gradient.
    ``max_target`` (the largest target, if the caller knows it) spares a
    device-to-host synchronisation per call when checking it against the logits.
    """
    x = batch.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = check_logits(module(x), x.shape[0], targets, max_target=max_target)
        score = logits.gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad


def _gradient_base(targets: torch.Tensor) -> BaseAttribution:
    """:func:`_input_gradient` with the largest target precomputed (no per-batch sync)."""
    return functools.partial(_input_gradient, max_target=int(targets.max()))


def _chunked(base: BaseAttribution, module: nn.Module, inputs: torch.Tensor,
             targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = torch.empty_like(inputs)
    for start in range(0, inputs.shape[0], batch_size):
        stop = min(start + batch_size, inputs.shape[0])
        out[start:stop] = base(module, inputs[start:stop], targets[start:stop])
    return out


def gradient(model: Any, inputs: torch.Tensor, target: TargetLike, *,
             batch_size: int | None = None) -> torch.Tensor:
    """Vanilla gradient saliency: d logit[target] / d inputs (Simonyan et al. 2014).

    This is SmoothGrad's n = 0 baseline: the map it smooths.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns) mapping
            ``(N, C, H, W)`` inputs to ``(N, K)`` logits.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``, N >= 1.
        target: one class index for all images, or a sequence/tensor of N indices.
        batch_size: images per forward/backward pass (default: :func:`default_batch_size`, lowered
            to what fits :data:`~interp_helpers.memory.PASS_BUDGET_BYTES` on this model).

    Returns:
        A detached tensor of the shape, dtype and device of ``inputs``.

    Raises:
        ValueError: on bad ``inputs``, ``target`` or ``batch_size`` (the message names it).
    """
    module, inputs, targets = _prepare(model, inputs, target)
    bs = _check_batch_size(batch_size, inputs, inputs.shape[0], module)
    with frozen_model(module) as m:
        return _chunked(_gradient_base(targets), m, inputs, targets, bs)


def gradient_x_input(model: Any, inputs: torch.Tensor, target: TargetLike, *,
                     batch_size: int | None = None) -> torch.Tensor:
    """Gradient times input, element-wise (Shrikumar et al. 2016).

    Same arguments as :func:`gradient`. Note that the result depends on the
    preprocessing: a pixel whose normalised value is 0 gets 0 attribution.
    """
    return gradient(model, inputs, target, batch_size=batch_size) * inputs.detach()


# --------------------------------------------------------------------------- noise


def noise_sigma(inputs: torch.Tensor, noise_level: float) -> torch.Tensor:
    """Per-image noise standard deviation: ``noise_level * (max(x_i) - min(x_i))``.

    This is the SmoothGrad paper's parametrisation (Smilkov et al. 2017, Sec. 3:
    noise level sigma / (x_max - x_min)) and PAIR saliency's ``stdev_spread``.
    Returns a tensor of shape (N,) in the dtype of ``inputs``.
    """
    inputs = check_inputs(inputs)
    level = _check_noise_level(noise_level)
    flat = inputs.detach().reshape(inputs.shape[0], -1)
    return level * (flat.amax(dim=1) - flat.amin(dim=1))


def _noise_keys(seed: int, image_index: Sequence[int], sample_index: Sequence[int],
                antithetic: bool) -> list[int]:
    """The counter-stream key of each (image i, sample j): ``_rng.stream_key(seed, i, j)``.

    With ``antithetic``, samples 2m and 2m+1 share the stream of pair m.
    """
    image_keys: dict[int, int] = {}
    keys = []
    for i, j in zip(image_index, sample_index):
        if i not in image_keys:
            image_keys[i] = _rng.stream_key(seed, i)
        keys.append(_rng.substream_key(image_keys[i], j // 2 if antithetic else j))
    return keys


def _to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device``; to a GPU through pinned memory, without waiting for it."""
    if device.type == "cuda":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)


def _noise_into(buf: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor) -> None:
    """Row k of ``buf`` <- ``scale[k]`` * (N(0, 1) noise of stream ``keys[k]``): the one noise path."""
    flat = buf.view(buf.shape[0], -1) if buf.is_contiguous() else torch.empty(
        (buf.shape[0], buf[0].numel()), dtype=buf.dtype, device=buf.device)
    _rng.normal_(flat, keys)
    flat.mul_(scale.view(-1, 1))
    if flat.data_ptr() != buf.data_ptr():
        buf.copy_(flat.view(buf.shape))


def _row_scales(std: Sequence[float] | torch.Tensor, sample_index: Sequence[int], antithetic: bool,
                dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """std[k], negated for the odd member of an antithetic pair (exact in any dtype)."""
    std = torch.as_tensor(std, dtype=dtype)
    std = std.to(device) if std.device.type != "cpu" else _to_device(std, device)
    if antithetic:
        sign = torch.tensor([-1.0 if j % 2 else 1.0 for j in sample_index], dtype=dtype)
        std = std * _to_device(sign, device)
    return std


def _fill_noise(buf: torch.Tensor, image_index: Sequence[int], sample_index: Sequence[int],
                seed: int, antithetic: bool, std: Sequence[float] | None = None) -> None:
    """Fill row k of ``buf`` with N(0, std[k]^2) noise (std 1 if not given) for (image, sample) number k.

    The draw for sample j of image i is a function of ``(seed, i, j)`` and the element
    index only (a counter-based generator, :func:`interp_helpers._rng.normal_`), so the
    result does not depend on how samples are chunked, nor on the device. With
    ``antithetic``, samples 2m and 2m+1 share one draw with opposite signs (eps, -eps).
    """
    rows = buf.shape[0]
    keys = torch.tensor(_noise_keys(seed, image_index, sample_index, antithetic), dtype=torch.int64)
    scale = _row_scales([1.0] * rows if std is None else std, sample_index, antithetic, buf.dtype, buf.device)
    _noise_into(buf, _to_device(keys, buf.device), scale)


def add_noise(inputs: torch.Tensor, noise_level: float, *, seed: int | None = None,
              sample_index: int = 0, antithetic: bool = False) -> torch.Tensor:
    """The noisy copy that :func:`smoothgrad` evaluates as sample ``sample_index``.

    ``inputs + noise_sigma(inputs, noise_level)[i] * eps`` with ``eps`` drawn as
    in :func:`smoothgrad` for the same ``seed``; use it to show what the model
    sees. Returns a new tensor; the global RNG is not touched.
    """
    inputs = check_inputs(inputs)
    sigma = noise_sigma(inputs, noise_level)
    seed = check_seed(seed)
    j = check_positive_int(sample_index, "sample_index", minimum=0)
    n = inputs.shape[0]
    buf = torch.empty_like(inputs)
    _fill_noise(buf, range(n), [j] * n, seed, bool(antithetic), sigma)
    return buf.add_(inputs.detach())


class _Sums:
    """Running per-image statistics of attributions, in float64.

    ``sum`` (for the mean), ``sq`` (sum of squares, for SmoothGrad²) and ``m2``
    (sum of squared deviations from the mean, for VarGrad) -- only those the
    variant needs. Each chunk's rows are first reduced in the attributions'
    dtype (at most ``batch_size`` terms), then merged into the float64 state;
    ``m2`` is merged with Chan et al.'s pairwise update (1979, "Updating
    formulae and a pairwise algorithm for computing sample variances"), which
    avoids the cancellation of E[g^2] - E[g]^2 when the mean dominates.
    """

    def __init__(self, inputs: torch.Tensor, variant: str) -> None:
        dtype = torch.float64 if inputs.device.type != "mps" else torch.float32

        def zeros() -> torch.Tensor:
            return torch.zeros(inputs.shape, dtype=dtype, device=inputs.device)

        self.n = 0
        self.count = [0] * inputs.shape[0]
        self.sum = zeros() if variant in ("smoothgrad", "vargrad") else None
        self.sq = zeros() if variant == "smoothgrad_sq" else None
        self.m2 = zeros() if variant == "vargrad" else None

    def add(self, image: int, attr: torch.Tensor) -> None:
        """Merge the attributions ``attr`` (rows: samples of image ``image``) into its statistics."""
        attr = attr.detach()
        k, n_a = attr.shape[0], self.count[image]
        if self.sq is not None:
            self.sq[image] += attr.square().sum(dim=0)
        if self.sum is not None:
            chunk_sum = attr.sum(dim=0)
            if self.m2 is not None:
                chunk_mean = chunk_sum / k
                self.m2[image] += (attr - chunk_mean).square_().sum(dim=0)
                if n_a > 0:
                    delta = chunk_mean.to(self.sum.dtype) - self.sum[image] / n_a
                    self.m2[image] += delta.square_().mul_(n_a * k / (n_a + k))
            self.sum[image] += chunk_sum
        self.count[image] = n_a + k

    def result(self, variant: str, out_dtype: torch.dtype) -> torch.Tensor:
        if variant == "smoothgrad":
            out = self.sum / self.n
        elif variant == "smoothgrad_sq":
            out = self.sq / self.n
        else:
            out = self.m2 / self.n  # population variance, as Captum's NoiseTunnel
        return out.to(out_dtype)


def _accumulate(
    base: BaseAttribution,
    module: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    sums: _Sums,
    samples: range,
    *,
    sigma: torch.Tensor,
    batch_size: int,
    seed: int,
    antithetic: bool,
    bar: Any = None,
) -> None:
    """Add ``base`` at noisy copies j in ``samples`` of every image to ``sums``.

    The copies (image i, sample j) are laid out image-major and evaluated in
    chunks of ``batch_size`` rows, which may span images.
    """
    m = len(samples)
    total = inputs.shape[0] * m
    x = inputs.detach()
    row_targets = targets.repeat_interleave(m)  # image-major, like the rows; sliced without a host copy
    # every row's noise stream and scale, computed once and sent to the device in one copy each
    all_images = [k // m for k in range(total)]
    all_samples = [samples[k % m] for k in range(total)]
    keys = torch.tensor(_noise_keys(seed, all_images, all_samples, antithetic), dtype=torch.int64)
    keys = _to_device(keys, x.device)
    scales = _row_scales(sigma.repeat_interleave(m), all_samples, antithetic, x.dtype, x.device)
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        image_index = all_images[start:stop]
        noisy = torch.empty((stop - start, *inputs.shape[1:]), dtype=inputs.dtype, device=inputs.device)
        _noise_into(noisy, keys[start:stop], scales[start:stop])
        # rows are image-major: a chunk is a few runs of rows of the same image
        segments = [(i, image_index.index(i), len(image_index) - image_index[::-1].index(i))
                    for i in sorted(set(image_index))]
        for i, a, b in segments:
            noisy[a:b].add_(x[i])
        attr = base(module, noisy, row_targets[start:stop])
        for i, a, b in segments:
            sums.add(i, attr[a:b])
        if bar is not None:
            bar.update(stop - start)
    sums.n += m


def _noise_averaged(
    base: BaseAttribution,
    module: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    checkpoints: Sequence[int],
    sigma: torch.Tensor,
    variant: str,
    batch_size: int,
    seed: int,
    antithetic: bool,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Average ``base`` over noisy copies: the one noise-averaging loop.

    ``base(module, batch, targets)`` returns the attribution of each row of
    ``batch`` for its target, in the batch's shape (e.g. :func:`_input_gradient`;
    any other per-batch method can be smoothed the same way). Returns the
    ``variant`` statistic after each of the increasing sample counts in
    ``checkpoints``, from a single run of ``checkpoints[-1]`` samples per image.
    Running float64 statistics (:class:`_Sums`) are the only state kept, so
    memory does not grow with the number of samples.
    ``module`` must already be frozen (see :func:`frozen_model`).
    """
    sums = _Sums(inputs, variant)
    results: list[torch.Tensor] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=inputs.shape[0] * checkpoints[-1], desc=variant, unit="sample")
    try:
        done = 0
        for n in checkpoints:
            _accumulate(base, module, inputs, targets, sums, range(done, n), sigma=sigma,
                        batch_size=batch_size, seed=seed, antithetic=antithetic, bar=bar)
            done = n
            results.append(sums.result(variant, inputs.dtype))
    finally:
        if bar is not None:
            bar.close()
    return results


def _check_smoothing_args(model: Any, inputs: Any, target: Any, noise_level: Any, variant: Any,
                          seed: Any, antithetic: Any) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    module, inputs, targets = _prepare(model, inputs, target)
    sigma = noise_sigma(inputs, noise_level)
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    seed = check_seed(seed)
    if not isinstance(antithetic, bool):
        raise ValueError(f"antithetic must be True or False, got {antithetic!r}")
    return module, inputs, targets, sigma, seed


def smoothgrad(
    model: Any,
    inputs: torch.Tensor,
    target: TargetLike,
    *,
    n_samples: int = 50,
    noise_level: float = 0.15,
    variant: str = "smoothgrad",
    batch_size: int | None = None,
    seed: int | None = None,
    antithetic: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """SmoothGrad: the input gradient averaged over noisy copies of the input.

    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"
    (arXiv:1706.03825). For each image x_i it evaluates n = ``n_samples``
    gradients g_ij = d logit[target_i] / dx at x_i + eps_ij, with
    eps_ij ~ N(0, sigma_i^2 I), and returns

    * ``"smoothgrad"``: (1/n) sum_j g_ij -- the paper's SmoothGrad;
    * ``"smoothgrad_sq"``: (1/n) sum_j g_ij^2 -- SmoothGrad-Squared (named so
      by Hooker et al. 2019; PAIR saliency's ``magnitude=True``);
    * ``"vargrad"``: (1/n) sum_j g_ij^2 - ((1/n) sum_j g_ij)^2 -- VarGrad
      (Adebayo et al. 2018), the population variance, as in Captum's NoiseTunnel.

    Noise: sigma_i = ``noise_level`` * (max(x_i) - min(x_i)), the range taken
    over all pixels and channels of image i as given (i.e. after preprocessing).
    This is the paper's "noise level" and PAIR saliency's ``stdev_spread``,
    whose default 0.15 is kept here; the paper finds 10-20 % works well.

    Args:
        model: a ``torch.nn.Module`` (or what ``load_model`` returns) mapping
            ``(N, C, H, W)`` to logits ``(N, K)``.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``, N >= 1.
        target: one class index for all images, or a sequence/tensor of N indices.
        n_samples: noisy copies per image, >= 1 (the paper uses 50).
        noise_level: noise standard deviation as a fraction of each image's range, >= 0.
        variant: ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
        batch_size: noisy copies per forward/backward pass; peak memory is set by
            it, not by ``n_samples``. Default :func:`default_batch_size` (eight
            224 x 224 images per pass), lowered to what fits
            :data:`~interp_helpers.memory.PASS_BUDGET_BYTES` on this model
            (:func:`~interp_helpers.memory.memory_batch_size`). The result does not depend on it.
        seed: noise seed; sample j of image i uses noise drawn from
            ``(seed, i, j)`` only. ``None`` draws a fresh seed from OS entropy.
            The global RNG is never used.
        antithetic: use antithetic pairs -- samples 2m and 2m+1 get noise eps and
            -eps. Unbiased like i.i.d. noise; it cancels the part of the gradient
            that is odd in the noise, which can lower the variance of the mean.
        progress: show a ``tqdm`` progress bar.

    Returns:
        A detached tensor of the shape, dtype and device of ``inputs``.

    Raises:
        ValueError: ``n_samples < 1``, ``noise_level < 0``, unknown ``variant``,
            ``target`` out of range or of the wrong length, ``inputs`` not 4-D or
            holding NaN/inf, bad ``batch_size`` or ``seed``.
        TypeError: ``model`` is not a module, ``inputs`` is not a tensor.
    """
    module, inputs, targets, sigma, seed = _check_smoothing_args(
        model, inputs, target, noise_level, variant, seed, antithetic)
    n_samples = check_positive_int(n_samples, "n_samples")
    bs = _check_batch_size(batch_size, inputs, inputs.shape[0] * n_samples, module)
    with frozen_model(module) as m:
        (result,) = _noise_averaged(
            _gradient_base(targets), m, inputs, targets, checkpoints=[n_samples], sigma=sigma, variant=variant,
            batch_size=bs, seed=seed, antithetic=antithetic, progress=bool(progress),
        )
    return result


def smoothgrad_checkpoints(
    model: Any,
    inputs: torch.Tensor,
    target: TargetLike,
    checkpoints: Sequence[int],
    *,
    noise_level: float = 0.15,
    variant: str = "smoothgrad",
    batch_size: int | None = None,
    seed: int | None = None,
    antithetic: bool = False,
    progress: bool = False,
) -> list[torch.Tensor]:
    """SmoothGrad after each of several sample counts, from one run: for convergence studies.

    Entry k equals ``smoothgrad(..., n_samples=checkpoints[k])`` with the same
    ``seed`` (up to float rounding): the noise of sample j depends on
    ``(seed, i, j)`` only, so the estimate at n is the running statistic over
    the first n samples of the run at ``max(checkpoints)``. Costs
    ``max(checkpoints)`` gradients per image instead of ``sum(checkpoints)``.

    Args:
        checkpoints: strictly increasing sample counts, each >= 1.
        Others: as in :func:`smoothgrad`.

    Returns:
        One detached tensor of the shape of ``inputs`` per checkpoint.
    """
    module, inputs, targets, sigma, seed = _check_smoothing_args(
        model, inputs, target, noise_level, variant, seed, antithetic)
    if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Sequence) or len(checkpoints) == 0:
        raise ValueError(f"checkpoints must be a non-empty sequence of increasing ints >= 1, got {checkpoints!r}")
    points = [check_positive_int(c, "checkpoints") for c in checkpoints]
    if any(b <= a for a, b in zip(points, points[1:])):
        raise ValueError(f"checkpoints must be strictly increasing, got {list(checkpoints)!r}")
    bs = _check_batch_size(batch_size, inputs, inputs.shape[0] * points[-1], module)
    with frozen_model(module) as m:
        return _noise_averaged(
            _gradient_base(targets), m, inputs, targets, checkpoints=points, sigma=sigma, variant=variant,
            batch_size=bs, seed=seed, antithetic=antithetic, progress=bool(progress),
        )
