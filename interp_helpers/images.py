"""Loading photos: bundled examples, files, URLs and arrays, all turned into RGB ``PIL.Image``.

Two kinds of bundled example: photographs inside wheels the project already
installs (scikit-image, matplotlib, scikit-learn), and a small set shipped in
this package (``interp_helpers/package_data/images/``: Nobel laureates,
portrait paintings, laboratory equipment), copied from Debian and PyPI source
packages with their licences and SHA-256 recorded in ``data/README.md``.
Nothing is downloaded.
"""
from __future__ import annotations

import io
import numbers
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ExampleImage", "example_images", "load_image"]

#: Largest image accepted, in pixels (width x height); larger is refused as a decompression bomb.
MAX_PIXELS = 60_000_000
#: Largest download accepted from a URL, in bytes.
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024

#: The categories an example belongs to, in the order ``example_images()`` lists them.
CATEGORIES = ("portrait", "Nobel laureate", "painting", "scientific figure", "scientific equipment",
              "everyday object")


@dataclass(frozen=True)
class ExampleImage:
    """One bundled example photo and where it comes from.

    ``package`` and ``file`` locate it with :mod:`importlib.resources`;
    ``source`` says where that copy was taken from (package, version, path);
    ``sha256`` is the digest of the file shipped here (``None`` for files read
    from another installed package, whose bytes this project does not control).
    """

    name: str
    package: str
    file: str
    licence: str
    shows: str
    category: str
    source: str = ""
    sha256: str | None = None

    @property
    def kind(self) -> str:
        """The category (older name of :attr:`category`)."""
        return self.category

    def resource(self) -> Traversable:
        """The file inside its installed package, as an :mod:`importlib.resources` resource.

        ``load_image`` reads it through this (``.read_bytes()``), which works wherever the
        package is installed; :meth:`path` is the same file as a filesystem path.
        """
        return resources.files(self.package).joinpath(self.file)

    def path(self) -> Path:
        """The file inside the installed package, as a filesystem path."""
        return Path(str(self.resource()))


_OWN = "package_data/images/"
_XRAYLARCH = ("Debian package python-xraylarch-doc 0.9.58+ds1-5, "
              "/usr/share/doc/python-xraylarch-doc/examples/xraytable/images/")
_XRAYLARCH_LICENCE = ("public domain (the folder's COPYING: 'the work is hereby placed in the Public Domain'; "
                      "photograph over 100 years old)")
_MORISOT = ("Debian package wordpress-theme-twentytwentyone 6.1.9+dfsg1-0+deb12u1, "
            "/usr/share/wordpress/wp-content/themes/twentytwentyone/assets/images/")
_MORISOT_LICENCE = "public domain (the theme's readme.txt: 'Art by Berthe Morisot 1841-1895. Public domain.')"
_KALZIUM = "Debian package kalzium-data 4:22.12.3-1, /usr/share/kalzium/data/toolpics/"
_KALZIUM_LICENCE = "GPL-2.0-or-later (Debian copyright of kalzium, 'Files: *'; Carsten Niehaus and others)"

_EXAMPLES = (
    ExampleImage("astronaut", "skimage", "data/astronaut.png", "public domain (NASA)",
                 "portrait of astronaut Eileen Collins", "portrait", "scikit-image wheel"),
    ExampleImage("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                 "public domain (US Navy photo)", "portrait of computer scientist Grace Hopper in uniform",
                 "portrait", "matplotlib wheel"),
    ExampleImage("chelsea", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)",
                 "Chelsea the cat", "everyday object", "scikit-image wheel"),
    ExampleImage("coffee", "skimage", "data/coffee.png", "CC0 (Rachel Michetti; courtesy Pikolo Espresso Bar)",
                 "a cup of coffee on a saucer", "everyday object", "scikit-image wheel"),
    ExampleImage("motorcycle", "skimage", "data/motorcycle_left.png",
                 "Middlebury stereo data set 2014 (Scharstein et al., GCPR 2014; cite when used)",
                 "a motorcycle in a lab (left stereo view)", "everyday object", "scikit-image wheel"),
    ExampleImage("china", "sklearn", "datasets/images/china.jpg", "CC-BY 2.0 (danielbuechele, Flickr)",
                 "a Chinese temple (Summer Palace)", "everyday object", "scikit-learn wheel"),
    ExampleImage("flower", "sklearn", "datasets/images/flower.jpg", "CC-BY 2.0 (vultilion, Flickr)",
                 "a flower with a bee", "everyday object", "scikit-learn wheel"),
    ExampleImage("rocket", "skimage", "data/rocket.jpg", "public domain (SpaceX)",
                 "a SpaceX Falcon 9 rocket on its launch pad", "scientific equipment", "scikit-image wheel"),
    ExampleImage("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "public domain (NASA)",
                 "Hubble eXtreme Deep Field: galaxies", "scientific figure", "scikit-image wheel"),
    ExampleImage("ihc", "skimage", "data/ihc.png", "no known copyright restrictions",
                 "immunohistochemistry micrograph (colon tissue)", "scientific figure", "scikit-image wheel"),
    ExampleImage("retina", "skimage", "data/retina.jpg", "CC0 1.0 (Mikael Häggström)",
                 "fundus photograph of a human retina", "scientific figure", "scikit-image wheel"),
    # Shipped in this package; provenance, licence evidence and hashes in data/README.md.
    ExampleImage("curie", "interp_helpers", _OWN + "curie.jpg", _XRAYLARCH_LICENCE,
                 "Marie Curie (Nobel Prize in Physics 1903, Chemistry 1911), black-and-white portrait photograph",
                 "Nobel laureate", _XRAYLARCH + "Marie_Curie.jpg (copied unchanged)",
                 "3aa8a85cca6c0f022806407931b758efff80f05a1a79f3972d070eb817fc13ef"),
    ExampleImage("barkla", "interp_helpers", _OWN + "barkla.jpg", _XRAYLARCH_LICENCE,
                 "Charles Glover Barkla (Nobel Prize in Physics 1917), black-and-white portrait photograph, "
                 "suit and bow tie", "Nobel laureate",
                 _XRAYLARCH + "Charles_Barkla.jpg (2802x3684, downscaled to 608x800)",
                 "6b814ce79c60c4ae847fa8c8d2276a7823d7a35570e5473d3e8825b91013ddaa"),
    ExampleImage("obama", "interp_helpers", _OWN + "obama.jpg",
                 "public domain: work of the US federal government (official White House portrait); "
                 "the sdist's MIT licence covers its code only",
                 "Barack Obama (Nobel Peace Prize 2009), official portrait: suit and tie, arms crossed, flags",
                 "Nobel laureate",
                 "PyPI sdist face_recognition 1.3.0, tests/test_images/obama.jpg (910x1137, downscaled to 640x800)",
                 "560c82830b040eaed18a5d8b02b530cbe20cf4fcadebcf3890246f9f4dd303f1"),
    ExampleImage("morisot_self_portrait", "interp_helpers", _OWN + "morisot_self_portrait.jpg", _MORISOT_LICENCE,
                 "Berthe Morisot, Self-Portrait (1885), oil painting", "painting",
                 _MORISOT + "self-portrait-1885.jpg (905x1108, downscaled to 653x800)",
                 "830380bb0bc01339b9c53c7cfa422a6b4b10534368189375891abbda37ab1c38"),
    ExampleImage("morisot_mauve", "interp_helpers", _OWN + "morisot_mauve.jpg", _MORISOT_LICENCE,
                 "Berthe Morisot, Young Woman in Mauve (c. 1880), oil painting", "painting",
                 _MORISOT + "young-woman-in-mauve.jpg (892x1103, downscaled to 647x800)",
                 "1fd263253f7ba302486aa2ea541e7d5538e936f3a1780c888cff9134bdb7a581"),
    ExampleImage("tanguy", "interp_helpers", _OWN + "tanguy.jpg",
                 "public domain per the upstream README next to the file ('based on an original painting by "
                 "Van Gogh, Public domain image.'); Debian's copyright file lists the folder as GPL-3",
                 "Vincent van Gogh, Portrait of Pere Tanguy (1887), oil painting", "painting",
                 "Debian package gcompris-qt-data 3.1-2, /usr/share/gcompris-qt/rcc/details.rcc, entry "
                 "gcompris/src/activities/details/resource/image/PortraitOfPereTanguy_background.webp "
                 "(394x500 WebP, re-encoded as JPEG; extracted with tools/read_qt_rcc.py)",
                 "acca0a3d3013c307202e2ab664d6f2ecac48b3f766d1d114bde002598a04d1c8"),
    ExampleImage("beaker", "interp_helpers", _OWN + "beaker.jpg", _KALZIUM_LICENCE,
                 "a 600 ml glass laboratory beaker", "scientific equipment",
                 _KALZIUM + "becherglas.jpg (copied unchanged)",
                 "d7fea98d08fef3f6be2b774f79be11dabc39b4a9bcaa1db59d088a3559c27a62"),
    ExampleImage("erlenmeyer", "interp_helpers", _OWN + "erlenmeyer.jpg", _KALZIUM_LICENCE,
                 "an Erlenmeyer (conical) flask", "scientific equipment",
                 _KALZIUM + "erlenmeyerkolben.jpg (copied unchanged)",
                 "a002bf17f611affc26db6b6781038d3060f1618e13edf024827a552cfa14ccf8"),
    ExampleImage("balance", "interp_helpers", _OWN + "balance.jpg", _KALZIUM_LICENCE,
                 "a laboratory balance (electronic scale) with a digital display", "scientific equipment",
                 _KALZIUM + "waage.jpg (copied unchanged)",
                 "14a88f5a12a786b0cac3157ca73a91595ad7b9ee9cd27a9e105793dfa3966ee4"),
    ExampleImage("mortar", "interp_helpers", _OWN + "mortar.jpg", _KALZIUM_LICENCE,
                 "a porcelain mortar and pestle", "scientific equipment",
                 _KALZIUM + "moerser.jpg (copied unchanged)",
                 "040a9f6b597ba21159a6b3bd75f2ba9a3f1a8eb2a0bf34e9446587f013923359"),
)
_BY_NAME = {e.name: e for e in _EXAMPLES}


def example_images() -> list[ExampleImage]:
    """The bundled example photos with provenance: package, file, licence, what each shows, category.

    The first eleven come from the scikit-image, matplotlib and scikit-learn
    wheels; the rest ship with this package. Filter by category with e.g.
    ``[e.name for e in example_images() if e.category == "painting"]``
    (categories: see ``interp_helpers.images.CATEGORIES``).
    """
    return list(_EXAMPLES)


def _from_array(array: np.ndarray, source: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] > 4:
        a = np.moveaxis(a, 0, -1)  # channels-first (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"{source}: expected an array (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{source}: the array is empty (shape {a.shape})")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)  # rescale 0..65535 -> 0..255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError(f"{source}: the array contains NaN or inf")
        if a.min() < 0 or a.max() > 1:
            raise ValueError(
                f"{source}: float arrays must lie in [0, 1], got range [{a.min():.3g}, {a.max():.3g}]"
            )
        a = np.round(a * 255).astype(np.uint8)
    else:
        raise ValueError(f"{source}: unsupported array dtype {a.dtype} (use uint8, uint16, bool or float)")
    image = Image.fromarray(np.ascontiguousarray(a))
    return _to_rgb(image, source)


def _to_rgb(image: Image.Image, source: str) -> Image.Image:
    """Normalise any PIL mode to RGB: 16-bit rescaled, alpha composited on white."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if a.max(initial=0) <= 65535 else float(a.max())
        a = np.round(np.clip(a, 0, None) / top * 255.0).astype(np.uint8)
        return Image.fromarray(a, mode="L").convert("RGB")
    if mode == "F":
        a = np.asarray(image, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = np.zeros_like(a) if hi == lo else (a - lo) / (hi - lo)
        return Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return image


def _decode(data: bytes | Path, source: str, max_pixels: int) -> Image.Image:
    handle = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(handle) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(
                    f"{source}: {width}x{height} = {width * height} pixels exceeds the limit of "
                    f"{max_pixels} (possible decompression bomb)"
                )
            image.load()  # raises OSError on truncated data
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image, source)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{source}: refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ValueError(f"{source}: not an image file PIL can read") from exc
    except (OSError, SyntaxError) as exc:  # truncated or corrupt data
        raise OSError(f"{source}: could not decode the image ({exc})") from exc


def _fetch(url: str, timeout: float, max_bytes: int) -> bytes:
    import urllib.error
    import urllib.request  # loads http.client, email and ssl: only when a URL is given

    request = urllib.request.Request(url, headers={"User-Agent": "interp-helpers"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only)
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OSError(f"{url}: could not download the image within {timeout} s ({exc})") from exc
    if len(data) > max_bytes:
        raise ValueError(f"{url}: the download exceeds the limit of {max_bytes} bytes")
    return data


def load_image(
    source: Any,
    *,
    timeout: float = 10.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Return an RGB ``PIL.Image`` from a bundled example name, a path, a URL, an array or an image.

    Greyscale, palette, RGBA (composited on white), CMYK and 16-bit images
    (rescaled to 8 bits, not clipped) become RGB; EXIF orientation is applied.

    Parameters
    ----------
    source:
        The name of a bundled example (see :func:`example_images`), a path, an
        ``http(s)://`` URL, a ``numpy`` array ``(H, W)``, ``(H, W, 3|4)`` or
        ``(3, H, W)`` (uint8, uint16, bool or float in [0, 1]), or a ``PIL.Image``.
    timeout:
        Seconds to wait for a URL before giving up.
    max_bytes:
        Largest download accepted from a URL.
    max_pixels:
        Largest image accepted (width x height); larger files are refused as
        possible decompression bombs.

    Raises
    ------
    FileNotFoundError
        for a path that does not exist.
    ValueError
        for unknown sources, non-image files, empty files, decompression bombs and bad arrays.
    OSError
        for truncated or corrupt files and failed downloads. Every message names the source.
    """
    for value, name in ((timeout, "timeout"), (max_bytes, "max_bytes"), (max_pixels, "max_pixels")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source), "PIL image")
    if isinstance(source, np.ndarray):
        return _from_array(source, "array")
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor
        return _from_array(source.detach().cpu().numpy(), "tensor")
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return _decode(_fetch(source, timeout, int(max_bytes)), source, int(max_pixels))
    if isinstance(source, str) and source in _BY_NAME:
        resource = _BY_NAME[source].resource()
        if not resource.is_file():
            raise FileNotFoundError(
                f"example '{source}': {resource} is missing; the package was installed without its data files "
                f"(reinstall interp-helpers from a wheel or a full checkout)"
            )
        return _decode(resource.read_bytes(), f"example '{source}'", int(max_pixels))
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            known = ", ".join(_BY_NAME)
            raise FileNotFoundError(f"{source}: no such file, URL or bundled example ({known})")
        if not path.is_file():
            raise ValueError(f"{source}: not a file")
        if path.stat().st_size == 0:
            raise ValueError(f"{source}: the file is empty")
        return _decode(path, str(source), int(max_pixels))
    raise TypeError(
        f"source must be a path, URL, example name, numpy array or PIL image, got {type(source).__name__}"
    )
