"""Noise-averaging over any attribution method: ``noise_tunnel``, and SmoothGrad as its best-known case.

* :func:`noise_tunnel` -- average any method of the package protocol
  (``method(model, inputs, target, *, ...)``) over noisy copies of the input, as
  Captum's ``NoiseTunnel(method)`` and PAIR saliency's ``GetSmoothedMask`` do:
  the mean (SmoothGrad), the mean of squares (SmoothGrad²) or the variance (VarGrad).
* :func:`smoothgrad` -- ``noise_tunnel`` over :func:`~interp_helpers.attribution.gradient.gradient`
  (Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise by
  adding noise"); its squared variant and VarGrad (Adebayo et al. 2018, "Local
  Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values").
* :func:`add_noise` / :func:`noise_sigma` -- the noisy copy a run evaluates, to show it.

The noise of sample j of image i is a pure function of ``(seed, i, j)`` and the
element index (a counter-based generator, :mod:`interp_helpers._rng`): results do
not depend on the batch size, on how samples are chunked, or on the device, and the
global RNG is never touched. Everything returns detached tensors on the inputs'
device and leaves the model exactly as found.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .. import _rng
from ..hooks import frozen_model
from ..validation import check_choice, check_flag, check_inputs, check_number, check_positive_int, check_seed
from .core import DEFAULT_SEED, Kernel, Method, Target, Targets, prepare, resolve_batch_size, rowwise_kernel
from .gradient import gradient

__all__ = ["VARIANTS", "add_noise", "noise_sigma", "noise_tunnel", "smoothgrad"]

#: The noise-averaged statistics :func:`noise_tunnel` can return.
VARIANTS: tuple[str, ...] = ("smoothgrad", "smoothgrad_sq", "vargrad")


def noise_sigma(inputs: torch.Tensor, noise_level: float) -> torch.Tensor:
    """Per-image noise standard deviation: ``noise_level * (max(x_i) - min(x_i))``.

    This is the SmoothGrad paper's parametrisation (Smilkov et al. 2017, Sec. 3:
    noise level sigma / (x_max - x_min)) and PAIR saliency's ``stdev_spread``.
    Returns a tensor of shape (N,) in the dtype and on the device of ``inputs``.
    """
    return _sigma(check_inputs(inputs), check_number(noise_level, "noise_level", low=0.0))


def _sigma(inputs: torch.Tensor, level: float) -> torch.Tensor:
    """:func:`noise_sigma` of checked inputs and level (the inputs are checked once per call)."""
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


def add_noise(inputs: torch.Tensor, noise_level: float, *, seed: int | None = DEFAULT_SEED,
              sample_index: int = 0, antithetic: bool = False) -> torch.Tensor:
    """The noisy copy that :func:`noise_tunnel` (and :func:`smoothgrad`) evaluates as sample ``sample_index``.

    ``inputs + noise_sigma(inputs, noise_level)[i] * eps`` with ``eps`` drawn as
    in :func:`noise_tunnel` for the same ``seed``; use it to show what the model
    sees. Returns a new tensor; the global RNG is not touched.
    """
    inputs = check_inputs(inputs)
    sigma = _sigma(inputs, check_number(noise_level, "noise_level", low=0.0))
    seed = check_seed(seed)
    j = check_positive_int(sample_index, "sample_index", minimum=0)
    antithetic = check_flag(antithetic, "antithetic")
    n = inputs.shape[0]
    buf = torch.empty_like(inputs)
    _fill_noise(buf, range(n), [j] * n, seed, antithetic, sigma)
    return buf.add_(inputs.detach())


class _Sums:
    """Running per-image statistics of attributions, in float64 (allocated at the first chunk).

    ``sum`` (for the mean), ``sq`` (sum of squares, for SmoothGrad²) and ``m2``
    (sum of squared deviations from the mean, for VarGrad) -- only those the
    variant needs. Each chunk's rows are first reduced in the attributions'
    dtype (at most ``batch_size`` terms), then merged into the float64 state;
    ``m2`` is merged with Chan et al.'s pairwise update (1979, "Updating
    formulae and a pairwise algorithm for computing sample variances"), which
    avoids the cancellation of E[g^2] - E[g]^2 when the mean dominates.
    The attributions may have any per-image shape (a layer method's activations too).
    """

    def __init__(self, n_images: int, variant: str) -> None:
        self.n_images = n_images
        self.variant = variant
        self.n = 0
        self.count = [0] * n_images
        self.sum = self.sq = self.m2 = None

    def _allocate(self, like: torch.Tensor) -> None:
        dtype = torch.float64 if like.device.type != "mps" else torch.float32

        def zeros() -> torch.Tensor:
            return torch.zeros((self.n_images, *like.shape[1:]), dtype=dtype, device=like.device)

        self.sum = zeros() if self.variant in ("smoothgrad", "vargrad") else None
        self.sq = zeros() if self.variant == "smoothgrad_sq" else None
        self.m2 = zeros() if self.variant == "vargrad" else None

    def add(self, image: int, attr: torch.Tensor) -> None:
        """Merge the attributions ``attr`` (rows: samples of image ``image``) into its statistics."""
        attr = attr.detach()
        if self.sum is None and self.sq is None:
            self._allocate(attr)
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

    def result(self, out_dtype: torch.dtype) -> torch.Tensor:
        if self.variant == "smoothgrad":
            out = self.sum / self.n
        elif self.variant == "smoothgrad_sq":
            out = self.sq / self.n
        else:
            out = self.m2 / self.n  # population variance, as Captum's NoiseTunnel
        return out.to(out_dtype)


def _rowwise_samples(kernel: Kernel, module: nn.Module, x: torch.Tensor, targets: Targets, sums: _Sums,
                     samples: range, *, sigma: torch.Tensor, batch_size: int, seed: int, antithetic: bool,
                     bar: Any = None) -> None:
    """Add ``kernel`` at noisy copies j in ``samples`` of every image to ``sums``.

    The copies (image i, sample j) are laid out image-major and evaluated in
    chunks of ``batch_size`` rows, which may span images (the kernel computes rows independently).
    """
    m = len(samples)
    total = x.shape[0] * m
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
        noisy = torch.empty((stop - start, *x.shape[1:]), dtype=x.dtype, device=x.device)
        _noise_into(noisy, keys[start:stop], scales[start:stop])
        # rows are image-major: a chunk is a few runs of rows of the same image
        segments = [(i, image_index.index(i), len(image_index) - image_index[::-1].index(i))
                    for i in sorted(set(image_index))]
        for i, a, b in segments:
            noisy[a:b].add_(x[i])
        attr = kernel(module, noisy, row_targets.take(start, stop))
        for i, a, b in segments:
            sums.add(i, attr[a:b])
        if bar is not None:
            bar.update(stop - start)
    sums.n += m


def _per_sample(explain: Method, module: nn.Module, x: torch.Tensor, targets: Targets, sums: _Sums,
                samples: range, *, sigma: torch.Tensor, seed: int, antithetic: bool, bar: Any = None) -> None:
    """Add ``explain`` at noisy copies j in ``samples`` to ``sums``: one call per sample, all images at once."""
    n = x.shape[0]
    for j in samples:
        noisy = torch.empty_like(x)
        _fill_noise(noisy, range(n), [j] * n, seed, antithetic, sigma)
        attr = explain(module, noisy.add_(x), targets.argument)
        if not isinstance(attr, torch.Tensor) or attr.dim() < 1 or attr.shape[0] != n:
            shape = tuple(attr.shape) if isinstance(attr, torch.Tensor) else type(attr).__name__
            raise ValueError(f"explain must return one attribution per input ({n}, ...), it returned {shape}")
        attr = attr.to(x.device)
        for i in range(n):
            sums.add(i, attr[i:i + 1])
        if bar is not None:
            bar.update(n)
    sums.n += len(samples)


def _check_sample_counts(n_samples: Any) -> tuple[list[int], bool]:
    """``n_samples`` as increasing checkpoints, and whether a list of results was asked for."""
    if isinstance(n_samples, Sequence) and not isinstance(n_samples, (str, bytes)):
        if len(n_samples) == 0:
            raise ValueError("n_samples must be an int >= 1 or a non-empty increasing sequence of them, got []")
        points = [check_positive_int(c, "n_samples") for c in n_samples]
        if any(b <= a for a, b in zip(points, points[1:])):
            raise ValueError(f"n_samples must be strictly increasing, got {list(n_samples)!r}")
        return points, True
    return [check_positive_int(n_samples, "n_samples")], False


def noise_tunnel(
    explain: Method,
    model: Any,
    inputs: torch.Tensor,
    target: Target,
    *,
    n_samples: int | Sequence[int] = 50,
    noise_level: float = 0.15,
    variant: str = "smoothgrad",
    batch_size: int | None = None,
    seed: int | None = DEFAULT_SEED,
    antithetic: bool = False,
    progress: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Average any attribution method over noisy copies of the input (SmoothGrad's recipe, for any method).

    For each image x_i it evaluates ``explain`` at n = ``n_samples`` noisy copies
    x_i + eps_ij, eps_ij ~ N(0, sigma_i^2 I), sigma_i = ``noise_level`` * (max(x_i) - min(x_i)),
    and returns, with a_ij the attribution of copy j,

    * ``"smoothgrad"``: (1/n) sum_j a_ij (Smilkov et al. 2017);
    * ``"smoothgrad_sq"``: (1/n) sum_j a_ij^2 (SmoothGrad-Squared, Hooker et al. 2019;
      PAIR's ``magnitude=True``);
    * ``"vargrad"``: the population variance of a_ij (Adebayo et al. 2018; as Captum's NoiseTunnel).

    This is Captum's ``NoiseTunnel(method)`` and PAIR's ``GetSmoothedMask``, with
    noise that depends on ``(seed, i, j)`` only. ``explain`` is any method of the
    package protocol, ``explain(model, inputs, target) -> Tensor`` with one
    attribution per input (any per-image shape), e.g. ``gradient``,
    ``gradient_x_input`` (multiplied by the *noisy* input, as in Captum),
    ``functools.partial(expected_gradients, background=bg)`` or your own function.
    Methods that compute rows independently (declared with
    :func:`~interp_helpers.attribution.core.rowwise`: ``gradient``, ``gradient_x_input``)
    are evaluated on batches of ``batch_size`` noisy copies that may mix images and
    samples; any other method (a partial or wrapper of those included) is called once
    per sample as ``explain(module, noisy_inputs, target)``: the bare ``nn.Module`` (frozen,
    eval mode), the N noisy images on the model's device, and the target as class indices
    on that device or the callable (it batches them itself; a stochastic method uses its
    own ``seed``, the same for every copy unless you vary it).

    Args:
        explain: the method to smooth.
        model: a ``torch.nn.Module`` (or what ``load_model`` returns); left exactly as found.
        inputs: preprocessed images, a finite floating tensor ``(N, C, H, W)``, N >= 1.
        target: class index / one per image / score callable (see :mod:`interp_helpers.attribution.core`).
        n_samples: noisy copies per image, >= 1 (the paper uses 50). A strictly increasing
            sequence, e.g. ``[10, 50, 200]``, returns the estimate after each count from one
            run at the largest (entry k equals the run with ``n_samples=counts[k]`` and the
            same seed, up to float rounding): for convergence studies.
        noise_level: noise standard deviation as a fraction of each image's range, >= 0
            (PAIR's ``stdev_spread``; its default 0.15 is kept; the paper finds 10-20 % works well).
        variant: ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
        batch_size: noisy copies per pass for row-wise methods; sets peak memory, not the
            result. Default: eight 224 x 224 images per pass, lowered to what fits
            :data:`~interp_helpers.memory.PASS_BUDGET_BYTES` on this model. Ignored for
            other methods (give them their own ``batch_size``).
        seed: noise seed (default 0); ``None`` draws a fresh one from OS entropy. The global RNG is never used.
        antithetic: samples 2m and 2m+1 get noise eps and -eps: unbiased like i.i.d. noise, it
            cancels the part of the attribution that is odd in the noise.
        progress: show a ``tqdm`` progress bar.

    Returns:
        A detached tensor of the attributions' shape on the inputs' device and dtype, or a list
        of them when ``n_samples`` is a sequence.

    Raises:
        ValueError / TypeError: naming the argument (bad counts, noise level, variant, seed,
        target, inputs, or an ``explain`` that is not callable or returns the wrong shape).
    """
    if not callable(explain):
        raise TypeError(f"explain must be a method explain(model, inputs, target), got {type(explain).__name__}")
    prep = prepare(model, inputs, target)
    sigma = _sigma(prep.inputs, check_number(noise_level, "noise_level", low=0.0))
    variant = check_choice(variant, "variant", VARIANTS)
    seed = check_seed(seed)
    antithetic = check_flag(antithetic, "antithetic")
    progress = check_flag(progress, "progress")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    points, as_list = _check_sample_counts(n_samples)
    kernel = rowwise_kernel(explain)
    n = prep.inputs.shape[0]
    bs = resolve_batch_size(batch_size, prep.module, prep.inputs, n * points[-1]) if kernel is not None else None
    sums = _Sums(n, variant)
    results: list[torch.Tensor] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        name = getattr(explain, "__name__", type(explain).__name__)
        bar = tqdm(total=n * points[-1], desc=f"{variant} of {name}", unit="sample")
    try:
        with frozen_model(prep.module) as m:
            done = 0
            for count in points:
                samples = range(done, count)
                if kernel is not None:
                    _rowwise_samples(kernel, m, prep.inputs, prep.targets, sums, samples, sigma=sigma,
                                     batch_size=bs, seed=seed, antithetic=antithetic, bar=bar)
                else:
                    _per_sample(explain, m, prep.inputs, prep.targets, sums, samples, sigma=sigma, seed=seed,
                                antithetic=antithetic, bar=bar)
                done = count
                results.append(prep.to_home(sums.result(prep.dtype)))
    finally:
        if bar is not None:
            bar.close()
    return results if as_list else results[0]


def smoothgrad(
    model: Any,
    inputs: torch.Tensor,
    target: Target,
    *,
    n_samples: int | Sequence[int] = 50,
    noise_level: float = 0.15,
    variant: str = "smoothgrad",
    batch_size: int | None = None,
    seed: int | None = DEFAULT_SEED,
    antithetic: bool = False,
    progress: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """SmoothGrad: the input gradient averaged over noisy copies of the input.

    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"
    (arXiv:1706.03825): ``noise_tunnel(gradient, model, inputs, target, ...)``,
    with the same arguments and result (see :func:`noise_tunnel`). For each image
    x_i it averages n = ``n_samples`` gradients g_ij = d logit[target_i] / dx at
    x_i + eps_ij, eps_ij ~ N(0, sigma_i^2 I), sigma_i = ``noise_level`` * (max(x_i) - min(x_i))
    (the range over all pixels and channels of image i as given, i.e. after
    preprocessing: the paper's "noise level", PAIR saliency's ``stdev_spread``).
    ``variant="smoothgrad_sq"`` averages g^2, ``"vargrad"`` returns the variance.
    Sample j of image i uses noise drawn from ``(seed, i, j)`` only, so the result
    does not depend on ``batch_size``.
    """
    return noise_tunnel(gradient, model, inputs, target, n_samples=n_samples, noise_level=noise_level,
                        variant=variant, batch_size=batch_size, seed=seed, antithetic=antithetic,
                        progress=progress)
