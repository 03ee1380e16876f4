"""interp_helpers.images: bundled photos with provenance, robust loading, and background images built from photos."""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import http.server
import importlib.util
import io
import re
import struct
import threading
import time
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from interp_helpers import images
from interp_helpers.images import CATEGORIES, blurred_copies, example_images, load_image, make_background, random_crops

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "interp_helpers" / "package_data" / "images"


def _save(tmp_path, image, name, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


def test_every_example_loads_as_rgb_and_has_provenance():
    examples = example_images()
    assert len({e.name for e in examples}) == len(examples)
    for e in examples:
        assert e.path().is_file(), e
        assert e.licence and e.shows
        assert e.package in ("skimage", "matplotlib", "sklearn", "interp_helpers")
        assert e.category in CATEGORIES
        image = load_image(e.name)
        assert image.mode == "RGB" and min(image.size) >= 200


def test_the_original_tutorials_subjects_are_all_there():
    by_category = {c: [e.name for e in example_images() if e.category == c] for c in CATEGORIES}
    assert all(by_category.values()), by_category  # every category has at least one example
    for category in ("Nobel laureate", "painting", "scientific equipment", "scientific figure"):
        assert len(by_category[category]) >= 2, (category, by_category[category])
    names = {e.name for e in example_images()}
    # notebooks and the CLI refer to these names
    assert {"curie", "barkla", "obama", "morisot_self_portrait", "morisot_mauve", "tanguy",
            "beaker", "erlenmeyer", "balance", "mortar", "grace_hopper", "hubble_deep_field"} <= names


def _readme_hashes():
    """``file -> sha256`` from the hash table of data/README.md (rows like | `x.jpg` | `abc...` |)."""
    text = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([\w.]+\.jpg)` \| `([0-9a-f]{64})` \|$", text, flags=re.MULTILINE))


def test_shipped_files_match_the_hashes_in_data_readme_and_the_limits():
    shipped = [e for e in example_images() if e.package == "interp_helpers"]
    folder = IMAGES
    on_disk = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    readme = _readme_hashes()
    # every file in the folder is an example, is listed in data/README.md, and nothing else is
    assert sorted(Path(e.file).name for e in shipped) == on_disk == sorted(readme)
    total = 0
    for e in shipped:
        data = e.path().read_bytes()
        assert hashlib.sha256(data).hexdigest() == readme[Path(e.file).name], e.name
        with Image.open(e.path()) as image:
            assert image.format == "JPEG" and max(image.size) <= 800, (e.name, image.format, image.size)
        total += len(data)
    assert total <= 1_500_000, total


def test_shipped_files_are_package_data():
    """pyproject.toml ships every file of the folder in wheels, so installed copies find them too."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package = "interp_helpers.package_data.images"
    assert package in config["packages"]
    patterns = config["package-data"][package]
    for path in IMAGES.iterdir():
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path.name


def test_examples_are_read_through_importlib_resources(monkeypatch):
    """load_image reads a bundled example's bytes from its resource, never from a path built on __file__."""
    curie = images._BY_NAME["curie"]
    assert curie.resource().read_bytes() == curie.path().read_bytes() == (IMAGES / "curie.jpg").read_bytes()
    monkeypatch.setattr(images.ExampleImage, "path", lambda self: (_ for _ in ()).throw(AssertionError("path")))
    assert load_image("curie").size == (232, 325)
    assert not any("__file__" in line for line in Path(images.__file__).read_text().splitlines()
                   if not line.lstrip().startswith("#"))


def test_a_missing_shipped_file_is_a_clear_error(monkeypatch):
    broken = dataclasses.replace(images._BY_NAME["curie"], file="package_data/images/gone.jpg")
    monkeypatch.setitem(images._BY_NAME, "curie", broken)
    with pytest.raises(FileNotFoundError, match="example 'curie'.*gone.jpg.*data files"):
        load_image("curie")


def test_rcc_reader_round_trip(tmp_path):
    """tools/read_qt_rcc.py, which extracted tanguy.jpg's source, reads a hand-built rcc (v2, zlib)."""
    spec = importlib.util.spec_from_file_location("read_qt_rcc", REPO / "tools" / "read_qt_rcc.py")
    rcc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rcc)
    plain, packed = b"hello", b"x" * 1000

    def name(text):
        encoded = text.encode("utf-16-be")
        return struct.pack(">HI", len(text), 0) + encoded

    names = name("dir") + name("a.txt") + name("b.bin")
    dir_off, a_off, b_off = 0, len(name("dir")), len(name("dir")) + len(name("a.txt"))
    data = struct.pack(">I", len(plain)) + plain
    z = struct.pack(">I", len(packed)) + zlib.compress(packed)
    data_b = len(data)
    data += struct.pack(">I", len(z)) + z

    def d(name_off, count, first):
        return struct.pack(">IHII", name_off, 2, count, first) + bytes(8)

    def f(name_off, flags, offset):
        return struct.pack(">IHHHI", name_off, flags, 0, 0, offset) + bytes(8)

    tree = d(0, 1, 1) + d(dir_off, 2, 2) + f(a_off, 0, 0) + f(b_off, 1, data_b)
    header = 24
    blob = b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(data)) + bytes(4)
    blob += tree + data + names
    files = {path: payload for path, _, payload in rcc.read_rcc(blob)}
    assert files == {"/dir/a.txt": plain, "/dir/b.bin": packed}
    with pytest.raises(ValueError, match="qres"):
        list(rcc.read_rcc(b"nope" + blob[4:]))


def test_greyscale_palette_rgba_cmyk(tmp_path):
    grey = Image.fromarray(np.full((8, 9), 77, np.uint8), "L")
    out = np.asarray(load_image(_save(tmp_path, grey, "g.png")))
    assert out.shape == (8, 9, 3) and (out == 77).all()

    pal = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    assert load_image(_save(tmp_path, pal, "p.png")).mode == "RGB"
    pal_t = Image.new("P", (4, 4), 0)
    pal_t.putpalette([255, 0, 0] * 256)
    pal_t.info["transparency"] = 0
    out = np.asarray(load_image(_save(tmp_path, pal_t, "pt.png", transparency=0)))
    assert (out == 255).all()  # fully transparent pixels composite on white

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # transparent -> white
    rgba[0, 0, 3] = 255  # one opaque red-ish pixel
    out = np.asarray(load_image(_save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png")))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)

    cmyk = Image.new("CMYK", (5, 5), (0, 255, 255, 0))  # pure red in CMYK
    out = np.asarray(load_image(_save(tmp_path, cmyk, "c.jpg", quality=95)))
    assert out.shape == (5, 5, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_16_bit_is_rescaled_not_clipped(tmp_path):
    a = np.array([[0, 32896, 65535], [1000, 20000, 50000]], np.uint16)
    path = _save(tmp_path, Image.fromarray(a), "sixteen.png")
    out = np.asarray(load_image(path))[..., 0]
    np.testing.assert_array_equal(out, np.round(a / 257.0).astype(np.uint8))
    assert len(np.unique(out)) == 6  # clipping to 255 would have collapsed values
    np.testing.assert_array_equal(np.asarray(load_image(a))[..., 0], out)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (30, 10), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = _save(tmp_path, image, "rotated.jpg", exif=exif)
    assert load_image(path).size == (10, 30)


def test_arrays_and_pil_images():
    assert load_image(np.zeros((5, 6, 3), np.uint8)).size == (6, 5)
    assert load_image(np.ones((3, 5, 6), np.float32)).size == (6, 5)  # channels first
    assert load_image(np.zeros((5, 6), bool)).mode == "RGB"
    assert load_image(Image.new("L", (3, 3))).mode == "RGB"
    assert np.asarray(load_image(torch.ones(3, 5, 6))).min() == 255  # a tensor, channels first
    with pytest.raises(ValueError, match="array"):
        load_image(np.full((4, 4), 2.0))  # floats outside [0, 1]
    with pytest.raises(ValueError, match="array"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="array"):
        load_image(np.zeros((0, 4), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="dtype"):
        load_image(np.zeros((4, 4), np.int64))
    with pytest.raises(TypeError, match="source"):
        load_image(12)


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_bad_files_raise_errors_naming_the_source(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.jpg"):
        load_image(text)
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(OSError, match="truncated.png"):
        load_image(truncated)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(30000, 30000))  # 900 megapixels declared in a tiny file
    with pytest.raises(ValueError, match="bomb.png.*decompression bomb"):
        load_image(bomb)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        load_image(tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match="not a file"):
        load_image(tmp_path)
    with pytest.raises(ValueError, match="max_pixels"):
        load_image("chelsea", max_pixels=0)
    with pytest.raises(ValueError, match="chelsea.*exceeds the limit of 100 .*decompression bomb"):
        load_image("chelsea", max_pixels=100)  # a real photo over a small limit
    with pytest.raises(ValueError, match="timeout"):
        load_image("chelsea", timeout=-1)


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        try:
            self.wfile.write(self.payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    servers = []

    def start(payload, delay=0.0):
        handler = type("H", (_Handler,), {"payload": payload, "delay": delay})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/photo.png"

    yield start
    for s in servers:
        s.shutdown()


def test_url_loads_and_is_bounded_in_time_and_size(server):
    buf = io.BytesIO()
    Image.new("RGB", (7, 5), (1, 2, 3)).save(buf, "PNG")
    assert load_image(server(buf.getvalue())).size == (7, 5)
    slow = server(buf.getvalue(), delay=5.0)
    start = time.perf_counter()
    with pytest.raises(OSError, match="photo.png"):
        load_image(slow, timeout=0.5)
    assert time.perf_counter() - start < 3.0
    with pytest.raises(ValueError, match="exceeds"):
        load_image(server(buf.getvalue()), max_bytes=10)


# --------------------------------------------------------------------------- background images


def _gradient_photo(w: int = 60, h: int = 40) -> Image.Image:
    """Red grows left to right, green top to bottom: a crop's colours say where it came from."""
    xs = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    ys = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8))


# --------------------------------------------------------------------------- random crops and backgrounds


def test_random_crops_sizes_seeding_and_prefix() -> None:
    photos = [_gradient_photo(), _gradient_photo(30, 50)]
    a = random_crops(photos, 6, seed=3, size=32)
    b = random_crops(photos, 6, seed=3, size=32)
    c = random_crops(photos, 3, seed=3, size=32)
    d = random_crops(photos, 6, seed=4, size=32)
    assert len(a) == 6 and all(im.size == (32, 32) and im.mode == "RGB" for im in a)
    arr = [np.asarray(im) for im in a]
    assert all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr, b))
    assert all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr[:3], c))  # crop k depends on (seed, k)
    assert not all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr, d))


def test_full_scale_crop_without_flip_is_the_centred_square_resized() -> None:
    """min_scale=1: the crop side is the shorter side; on a 40-high photo the crop spans all rows."""
    photo = _gradient_photo(40, 40)
    (crop,) = random_crops([photo], 1, seed=0, min_scale=1.0, flip=False, size=40)
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(photo))


def test_flips_mirror_the_crop() -> None:
    photo = _gradient_photo(40, 40)
    crops = random_crops([photo], 40, seed=1, min_scale=1.0, flip=True, size=40)
    original, mirrored = np.asarray(photo), np.asarray(photo)[:, ::-1]
    kinds = [np.array_equal(np.asarray(c), original) - np.array_equal(np.asarray(c), mirrored) for c in crops]
    assert set(kinds) == {1, -1}  # every crop is the photo or its mirror, both occur
    assert 10 <= kinds.count(-1) <= 30


def test_crops_come_from_inside_the_photo() -> None:
    photo = _gradient_photo(100, 50)
    for crop in random_crops([photo], 10, seed=2, min_scale=0.2, flip=False, size=20):
        a = np.asarray(crop).astype(int)
        assert a[..., 2].max() == 0
        # red increases left to right within the crop, green top to bottom (no flip)
        assert a[:, -1, 0].mean() >= a[:, 0, 0].mean() and a[-1, :, 1].mean() >= a[0, :, 1].mean()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": []}, "images"),
        ({"images": "chelsea"}, "images"),
        ({"n": 0}, "n"),
        ({"min_scale": 0}, "min_scale"),
        ({"min_scale": 1.5}, "min_scale"),
        ({"size": 0}, "size"),
        ({"seed": -2}, "seed"),
        ({"min_scale": float("nan")}, "min_scale"),
        ({"min_scale": True}, "min_scale"),
    ],
)
def test_random_crops_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"images": [_gradient_photo()], "n": 2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        random_crops(args.pop("images"), args.pop("n"), **args)
    with pytest.raises(TypeError, match="flip"):
        random_crops([_gradient_photo()], 2, flip="yes")


def test_seed_defaults_to_the_package_default() -> None:
    photos = [_gradient_photo(), _gradient_photo(30, 50)]
    from interp_helpers._common import DEFAULT_SEED

    default = random_crops(photos, 4, size=16)
    seeded = random_crops(photos, 4, seed=DEFAULT_SEED, size=16)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(default, seeded))

    class Identity:
        def preprocess(self, images: list) -> list:
            return images

    crops = make_background(Identity(), 2, images=photos)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(crops, random_crops(photos, 2, seed=DEFAULT_SEED)))


def test_make_background_uses_model_preprocess() -> None:
    class FakeModel:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def preprocess(self, images: list) -> torch.Tensor:
            self.seen.append(len(images))
            return torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32)).permute(2, 0, 1) for i in images])

    fake = FakeModel()
    bg = make_background(fake, 3, images=[_gradient_photo()], seed=0)
    assert fake.seen == [3] and bg.shape == (3, 3, 224, 224)
    with pytest.raises(TypeError, match="model"):
        make_background(torch.nn.Linear(2, 2), 3)


def test_make_background_default_uses_bundled_photos() -> None:
    class Identity:
        def preprocess(self, images: list) -> list:
            return images

    crops = make_background(Identity(), 2, seed=0)
    assert len(crops) == 2 and all(c.size == (224, 224) for c in crops)


# --------------------------------------------------------------------------- blurred_copies


def test_blur_known_answers() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 20, 24, generator=g, dtype=torch.float64)
    out = blurred_copies(x, [0, 1.0, 50.0])
    assert out.shape == (6, 3, 20, 24)
    torch.testing.assert_close(out[0], x[0])  # sigma 0: unchanged
    torch.testing.assert_close(out[3], x[1])  # image-major order
    # A constant image stays constant; the kernel sums to 1 (so blur commutes with normalisation).
    const = torch.full((1, 3, 8, 8), 0.7, dtype=torch.float64)
    torch.testing.assert_close(blurred_copies(const, [2.0]), const)
    # Blur is linear and commutes with a per-channel affine map.
    mean = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.3, 0.25], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(blurred_copies((x - mean) / std, [1.5]), (blurred_copies(x, [1.5]) - mean) / std)
    # Blur lowers variance; a huge sigma (kernel wider than the image) leaves ~ the image mean.
    assert out[1].var() < 0.5 * x[0].var()
    assert out[2].std(dim=(1, 2)).max() < 0.25 * x[0].std()


def test_blur_of_an_impulse_is_a_gaussian() -> None:
    x = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    x[0, 0, 15, 15] = 1.0
    y = blurred_copies(x, [2.0])[0, 0]
    r = torch.arange(31, dtype=torch.float64) - 15
    gauss = torch.exp(-0.5 * (r / 2.0) ** 2) * (r.abs() <= 6)  # radius int(3 sigma + 0.5) = 6, as documented
    expected = torch.outer(gauss, gauss)
    expected = expected / expected.sum()
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sigmas", [[0.4, 0.7, 1.0], [1.5, 2.0, 3.3], [0.1, 12.0]])
def test_blur_equals_scipy_gaussian_filter_nearest(sigmas: list) -> None:
    """blurred_copies = scipy.ndimage.gaussian_filter(mode="nearest", truncate=3) on each image and sigma.

    The kernel radius is scipy's int(3 sigma + 0.5) (it was ceil(3 sigma) before interp_helpers.maps):
    sigmas 0.4 and 0.7 are where the two conventions differ.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 17, 23, generator=g, dtype=torch.float64)
    out = blurred_copies(x, sigmas)
    for i in range(2):
        for k, sigma in enumerate(sigmas):
            expected = gaussian_filter(x[i].numpy(), (0, sigma, sigma), mode="nearest", truncate=3.0)
            np.testing.assert_allclose(out[i * len(sigmas) + k].numpy(), expected, rtol=1e-10, atol=1e-12)


def test_blur_keeps_dtype_and_float32_is_close_to_scipy() -> None:
    x = torch.rand(1, 3, 10, 10)
    out = blurred_copies(x, [0.7])
    assert out.dtype == torch.float32 and out.shape == (1, 3, 10, 10)
    expected = gaussian_filter(x[0].double().numpy(), (0, 0.7, 0.7), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "sigmas", "error", "match"),
    [
        (torch.zeros(3, 8, 8), [1.0], ValueError, "inputs"),
        ([[0.0]], [1.0], TypeError, "inputs"),
        (torch.zeros(1, 3, 8, 8), [], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), [-1.0], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), [float("nan")], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), 2.0, ValueError, "sigmas"),
    ],
)
def test_blur_bad_arguments(inputs: object, sigmas: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        blurred_copies(inputs, sigmas)
