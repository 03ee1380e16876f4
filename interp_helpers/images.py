"""Photos as RGB ``PIL.Image`` (bundled examples, files, URLs, arrays) and background batches built from them.

The bundled examples are photographs inside wheels the project already installs (scikit-image, matplotlib,
scikit-learn) and a few shipped in this package (``package_data/images/``; sources, licences and SHA-256 in
``data/README.md``). Nothing is downloaded.
"""
from __future__ import annotations

import io
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.ndimage import gaussian_filter

from ._common import (
    DEFAULT_SEED,
    check_flag,
    check_inputs,
    check_int,
    check_number,
    check_positive,
    check_seed,
    numpy_rng,
)

MAX_PIXELS = 60_000_000  #: largest image accepted (width x height); more is refused as a decompression bomb
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024  #: largest download accepted from a URL

#: The categories an example belongs to, in the order ``example_images()`` lists them.
CATEGORIES = ("portrait", "Nobel laureate", "painting", "scientific figure", "scientific equipment",
              "everyday object")


@dataclass(frozen=True)
class ExampleImage:
    """One bundled example photo: ``package`` and ``file`` locate it with :mod:`importlib.resources`."""

    name: str
    package: str
    file: str
    licence: str
    shows: str
    category: str

    def resource(self) -> Traversable:
        """The file inside its installed package (``load_image`` reads its ``.read_bytes()``)."""
        return resources.files(self.package).joinpath(self.file)

    def path(self) -> Path:
        """The file inside the installed package, as a filesystem path."""
        return Path(str(self.resource()))


def _own(name: str, licence: str, shows: str, category: str) -> ExampleImage:  # sources: data/README.md
    return ExampleImage(name, "interp_helpers", f"package_data/images/{name}.jpg", licence, shows, category)


_PUBLIC_DOMAIN_PHOTO = "public domain (the source folder's COPYING says so; photograph over 100 years old)"
_MORISOT = "public domain (Berthe Morisot 1841-1895; the WordPress theme's readme.txt)"
_KALZIUM = "GPL-2.0-or-later (Debian package kalzium-data; Carsten Niehaus and others)"

_EXAMPLES = (
    ExampleImage("astronaut", "skimage", "data/astronaut.png", "public domain (NASA)",
                 "portrait of astronaut Eileen Collins", "portrait"),
    ExampleImage("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                 "public domain (US Navy photo)", "portrait of computer scientist Grace Hopper in uniform", "portrait"),
    ExampleImage("chelsea", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)", "Chelsea the cat",
                 "everyday object"),
    ExampleImage("coffee", "skimage", "data/coffee.png", "CC0 (Rachel Michetti; courtesy Pikolo Espresso Bar)",
                 "a cup of coffee on a saucer", "everyday object"),
    ExampleImage("motorcycle", "skimage", "data/motorcycle_left.png",
                 "Middlebury stereo data set 2014 (Scharstein et al., GCPR 2014; cite when used)",
                 "a motorcycle in a lab (left stereo view)", "everyday object"),
    ExampleImage("china", "sklearn", "datasets/images/china.jpg", "CC-BY 2.0 (danielbuechele, Flickr)",
                 "a Chinese temple (Summer Palace)", "everyday object"),
    ExampleImage("flower", "sklearn", "datasets/images/flower.jpg", "CC-BY 2.0 (vultilion, Flickr)",
                 "a flower with a bee", "everyday object"),
    ExampleImage("rocket", "skimage", "data/rocket.jpg", "public domain (SpaceX)",
                 "a SpaceX Falcon 9 rocket on its launch pad", "scientific equipment"),
    ExampleImage("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "public domain (NASA)",
                 "Hubble eXtreme Deep Field: galaxies", "scientific figure"),
    ExampleImage("ihc", "skimage", "data/ihc.png", "no known copyright restrictions",
                 "immunohistochemistry micrograph (colon tissue)", "scientific figure"),
    ExampleImage("retina", "skimage", "data/retina.jpg", "CC0 1.0 (Mikael Häggström)",
                 "fundus photograph of a human retina", "scientific figure"),
    _own("curie", _PUBLIC_DOMAIN_PHOTO, "Marie Curie (Nobel Prize in Physics 1903, Chemistry 1911), "
         "black-and-white portrait photograph", "Nobel laureate"),
    _own("barkla", _PUBLIC_DOMAIN_PHOTO, "Charles Glover Barkla (Nobel Prize in Physics 1917), black-and-white "
         "portrait photograph, suit and bow tie", "Nobel laureate"),
    _own("obama", "public domain: work of the US federal government (official White House portrait)",
         "Barack Obama (Nobel Peace Prize 2009), official portrait: suit and tie, arms crossed, flags",
         "Nobel laureate"),
    _own("morisot_self_portrait", _MORISOT, "Berthe Morisot, Self-Portrait (1885), oil painting", "painting"),
    _own("morisot_mauve", _MORISOT, "Berthe Morisot, Young Woman in Mauve (c. 1880), oil painting", "painting"),
    _own("tanguy", "public domain per the upstream README next to the file; Debian's copyright file lists the "
         "folder as GPL-3", "Vincent van Gogh, Portrait of Pere Tanguy (1887), oil painting", "painting"),
    _own("beaker", _KALZIUM, "a 600 ml glass laboratory beaker", "scientific equipment"),
    _own("erlenmeyer", _KALZIUM, "an Erlenmeyer (conical) flask", "scientific equipment"),
    _own("balance", _KALZIUM, "a laboratory balance (electronic scale) with a digital display",
         "scientific equipment"),
    _own("mortar", _KALZIUM, "a porcelain mortar and pestle", "scientific equipment"),
)
_BY_NAME = {e.name: e for e in _EXAMPLES}


def example_images() -> list[ExampleImage]:
    """The bundled example photos: package, file, licence, what each shows and category (:data:`CATEGORIES`;
    ``[e.name for e in example_images() if e.category == "painting"]``)."""
    return list(_EXAMPLES)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as RGB: 16-bit rescaled (not clipped), transparency composited on white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.clip(np.asarray(image, dtype=np.float64), 0, None)
        a = np.round(a / max(65535.0, a.max(initial=0)) * 255).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if "transparency" in image.info or image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _from_array(array: np.ndarray, source: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] > 4:
        a = np.moveaxis(a, 0, -1)  # channels first (C, H, W) -> (H, W, C)
    a = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or a.size == 0:
        raise ValueError(f"{source}: expected a non-empty array (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)  # 0..65535 -> 0..255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError(f"{source}: a float array must be finite (no NaN or inf) and lie in [0, 1], "
                             f"got range [{a.min():.3g}, {a.max():.3g}]")
        a = np.round(a * 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"{source}: unsupported array dtype {a.dtype} (use uint8, uint16, bool or float)")
    return _to_rgb(Image.fromarray(np.ascontiguousarray(a)))


def _decode(data: bytes | Path, source: str, max_pixels: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(f"{source}: {width}x{height} = {width * height} pixels exceeds the limit of "
                                 f"{max_pixels} (possible decompression bomb)")
            image.load()  # raises OSError on truncated data
            return _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{source}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ValueError(f"{source}: not an image file PIL can read") from exc
    except (OSError, SyntaxError) as exc:  # truncated or corrupt data
        raise OSError(f"{source}: could not decode the image ({exc})") from exc


def load_image(source: Any, *, timeout: float = 10.0, max_bytes: int = MAX_DOWNLOAD_BYTES,
               max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An RGB ``PIL.Image`` from a bundled example name, a path, an ``http(s)://`` URL, an array or an image.

    Arrays: ``(H, W)``, ``(H, W, 3|4)`` or ``(3, H, W)``; uint8, uint16, bool or float in [0, 1]. Greyscale,
    palette, RGBA (on white), CMYK and 16-bit images (rescaled) become RGB; EXIF orientation is applied.
    A URL gets ``timeout`` seconds and ``max_bytes``; more than ``max_pixels`` is refused as a possible
    decompression bomb. Errors name the source: ``FileNotFoundError`` (missing path), ``ValueError``
    (unknown source, non-image or empty file, bomb, bad array), ``OSError`` (truncated file, failed download).
    """
    timeout = check_positive(timeout, "timeout")
    max_bytes, max_pixels = check_int(max_bytes, "max_bytes"), check_int(max_pixels, "max_pixels")
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, (np.ndarray, torch.Tensor)):
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else source
        return _from_array(array, type(source).__name__)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        try:
            request = urllib.request.Request(source, headers={"User-Agent": "interp-helpers"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read(max_bytes + 1)
        except OSError as exc:  # URLError and timeouts included
            raise OSError(f"{source}: could not download the image within {timeout} s ({exc})") from exc
        if len(data) > max_bytes:
            raise ValueError(f"{source}: the download exceeds the limit of {max_bytes} bytes")
        return _decode(data, source, max_pixels)
    if isinstance(source, str) and source in _BY_NAME:
        resource = _BY_NAME[source].resource()
        if not resource.is_file():
            raise FileNotFoundError(f"example '{source}': {resource} is missing; the package was installed without "
                                    "its data files (reinstall interp-helpers from a wheel or a full checkout)")
        return _decode(resource.read_bytes(), f"example '{source}'", max_pixels)
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{source}: no such file, URL or bundled example ({', '.join(_BY_NAME)})")
        if not path.is_file() or path.stat().st_size == 0:
            raise ValueError(f"{source}: not a file, or the file is empty")
        return _decode(path, str(source), max_pixels)
    raise TypeError(f"source must be a path, URL, example name, numpy array or PIL image, got {type(source).__name__}")


def random_crops(images: Sequence[Any], n: int, *, seed: int | None = DEFAULT_SEED, min_scale: float = 0.3,
                 flip: bool = True, size: int = 224) -> list[Image.Image]:
    """``n`` random square crops of ``images`` (anything :func:`load_image` accepts), each ``size`` x ``size``.

    Crop k picks a photo uniformly, a side of ``s * min(width, height)`` with ``s ~ U(min_scale, 1)``, a
    uniformly random position and, with ``flip``, a horizontal flip with probability 1/2: the "random
    resized crop" augmentation (Szegedy et al. 2015, "Going deeper with convolutions") restricted to
    squares. Crop k is drawn from the stream ``(seed, k)``, so the first crops stay when ``n`` grows.
    """
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError(f"images must be a non-empty sequence of images, got {images!r:.80}")
    n, size, seed = check_int(n, "n"), check_int(size, "size"), check_seed(seed)
    min_scale, flip = check_positive(min_scale, "min_scale", 1.0), check_flag(flip, "flip")
    photos = [load_image(i) for i in images]
    crops = []
    for k in range(n):
        u = numpy_rng(seed, k).random(5)
        photo = photos[min(int(u[4] * len(photos)), len(photos) - 1)]
        w, h = photo.size
        side = max(1, round((min_scale + (1 - min_scale) * u[0]) * min(w, h)))
        left, top = round(u[1] * (w - side)), round(u[2] * (h - side))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        crops.append(ImageOps.mirror(crop) if flip and u[3] < 0.5 else crop)
    return crops


def make_background(model: Any, n: int = 16, *, images: Sequence[Any] | None = None,
                    seed: int | None = DEFAULT_SEED, min_scale: float = 0.3, flip: bool = True) -> torch.Tensor:
    """A background batch ``(n, 3, 224, 224)`` for ``model`` (what ``load_model`` returns): :func:`random_crops`
    of ``images`` (default: every bundled photo; leave out the one you explain), preprocessed for the model.
    Crops of natural photos stand in for shap's ``imagenet50``, which is downloaded."""
    if not callable(getattr(model, "preprocess", None)):
        raise TypeError(f"model must be what load_model returns (with .preprocess), got {type(model).__name__}")
    images = [e.name for e in _EXAMPLES] if images is None else images
    return model.preprocess(random_crops(images, n, seed=seed, min_scale=min_scale, flip=flip))


def blurred_copies(inputs: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Gaussian-blurred copies of each image: ``(N * len(sigmas), C, H, W)``, row ``i * len(sigmas) + k``
    holding image i blurred with ``sigmas[k]`` pixels.

    The blur is ``scipy.ndimage.gaussian_filter(x, (0, s, s), mode="nearest", truncate=3)`` (radius
    ``int(3 * s + 0.5)``; ``s = 0`` leaves the image unchanged). Its kernel sums to 1, so it commutes with
    preprocessing's per-channel normalisation. Blurred baselines: Sturmfels, Lundberg & Lee 2020,
    "Visualizing the impact of feature attribution baselines" (Distill).
    """
    x = check_inputs(inputs).detach()
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or len(sigmas) == 0:
        raise ValueError(f"sigmas must be a non-empty sequence of numbers >= 0, got {sigmas!r}")
    sigmas = [check_number(s, f"sigmas[{k}] (pixels)", low=0.0) for k, s in enumerate(sigmas)]
    a = (x.cpu() if x.dtype in (torch.float32, torch.float64) else x.cpu().float()).numpy()  # scipy has no float16
    copies = np.stack([gaussian_filter(a, (0, 0, s, s), mode="nearest", truncate=3.0) for s in sigmas], axis=1)
    return torch.from_numpy(copies).reshape(x.shape[0] * len(sigmas), *x.shape[1:]).to(x.device, x.dtype)
