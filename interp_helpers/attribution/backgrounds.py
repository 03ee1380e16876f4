"""Background (baseline) images for expected gradients and shap's GradientExplainer, built offline.

Expected gradients (Erion et al. 2021) and SHAP (Lundberg & Lee 2017) explain
``f(x) - E[f(x')]`` with ``x'`` drawn from a background distribution; shap's
examples use ``imagenet50``, fifty ImageNet photos fetched from the internet.
Here nothing is downloaded, so two documented substitutes are offered:

* :func:`random_crops` / :func:`make_background` -- random square crops (with
  random horizontal flips) of the bundled example photos
  (:func:`interp_helpers.images.example_images`): natural-image statistics,
  like ``imagenet50``, but few source photos;
* :func:`blurred_copies` -- Gaussian-blurred copies of the explained image
  itself (as in Sturmfels, Lundberg & Lee 2020, "Visualizing the impact of
  feature attribution baselines", Distill): "what the model sees without fine
  detail", so attributions highlight edges and texture rather than colour.

The choice matters: attributions explain the difference from the background,
so the same photo gets different maps against different backgrounds.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image, ImageOps

from .. import _rng
from ..images import example_images, load_image
from ..maps import gaussian_blur
from ..validation import check_flag, check_fraction, check_inputs, check_number, check_positive_int, check_seed
from .core import DEFAULT_SEED

__all__ = ["blurred_copies", "make_background", "random_crops"]


def random_crops(images: Sequence[Any], n: int, *, seed: int | None = DEFAULT_SEED, min_scale: float = 0.3,
                 flip: bool = True, size: int = 224) -> list[Image.Image]:
    """``n`` random square crops of ``images``, each resized to ``size`` x ``size``.

    Crop k picks a photo uniformly, a side of ``s * min(width, height)`` with
    ``s ~ U(min_scale, 1)``, a uniformly random position, and (with ``flip``)
    a horizontal flip with probability 1/2 -- the "random resized crop"
    augmentation (Szegedy et al. 2015) restricted to square crops. Crop k
    depends on ``(seed, k)`` only (see :mod:`interp_helpers._rng`), so the
    first crops do not change when ``n`` grows.

    Args:
        images: photos, anything :func:`~interp_helpers.images.load_image` accepts.
        n: number of crops, >= 1.
        seed: default 0; ``None`` draws a fresh seed from OS entropy; the global RNG is never used.
        min_scale: smallest crop side as a fraction of the photo's shorter side, in (0, 1].
        flip: allow horizontal flips.
        size: side of the returned images in pixels, >= 1.
    """
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError(f"images must be a non-empty sequence of images, got {images!r:.80}")
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    min_scale = check_fraction(min_scale, "min_scale")
    flip = check_flag(flip, "flip")
    seed = check_seed(seed)
    photos = [load_image(i) for i in images]
    crops = []
    for k in range(n):
        u = _rng.uniforms(seed, k, n=5)
        photo = photos[min(int(u[4] * len(photos)), len(photos) - 1)]
        w, h = photo.size
        side = max(1, round((min_scale + (1 - min_scale) * u[0]) * min(w, h)))
        left = round(u[1] * (w - side))
        top = round(u[2] * (h - side))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        if flip and u[3] < 0.5:
            crop = ImageOps.mirror(crop)
        crops.append(crop)
    return crops


def make_background(model: Any, n: int = 16, *, images: Sequence[Any] | None = None,
                    seed: int | None = DEFAULT_SEED,
                    min_scale: float = 0.3, flip: bool = True) -> torch.Tensor:
    """A background batch ``(n, 3, 224, 224)`` for ``model``: random crops of photos, preprocessed.

    ``model`` is what :func:`~interp_helpers.models.load_model` returns (its
    ``preprocess`` normalises the crops as the model expects). ``images``
    defaults to every bundled example photo; leave out the photo you explain
    to keep it out of its own baseline. See :func:`random_crops` for the crops.
    """
    preprocess = getattr(model, "preprocess", None)
    if not callable(preprocess):
        raise TypeError(f"model must be what load_model returns (with .preprocess), got {type(model).__name__}")
    if images is None:
        images = [e.name for e in example_images()]
    return preprocess(random_crops(images, n, seed=seed, min_scale=min_scale, flip=flip))


def blurred_copies(inputs: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Gaussian-blurred copies of each image: ``(N * len(sigmas), C, H, W)``, image-major.

    Row ``i * len(sigmas) + k`` is image i blurred with standard deviation
    ``sigmas[k]`` pixels by :func:`interp_helpers.maps.gaussian_blur` (=
    ``scipy.ndimage.gaussian_filter(x, (0, 0, s, s), mode="nearest")``: kernel
    radius ``int(3 * s + 0.5)``, edges replicated; ``0`` returns the image
    unchanged). Blurring commutes with the per-channel normalisation of
    preprocessing (the kernel sums to 1), so preprocessed tensors can be blurred
    directly. Sturmfels et al. 2020 (Distill) discuss blurred baselines.
    """
    inputs = check_inputs(inputs)
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or len(sigmas) == 0:
        raise ValueError(f"sigmas must be a non-empty sequence of numbers >= 0, got {sigmas!r}")
    sigmas = [check_number(s, f"sigmas[{k}] (pixels)", low=0.0) for k, s in enumerate(sigmas)]
    x = inputs.detach()
    copies = torch.stack([gaussian_blur(x, s) for s in sigmas], dim=1)  # (N, S, C, H, W)
    return copies.reshape(x.shape[0] * len(sigmas), *x.shape[1:])
