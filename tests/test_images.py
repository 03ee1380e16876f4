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
from PIL import Image

import interp_helpers as ih
from interp_helpers import images
from interp_helpers.images import CATEGORIES

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "interp_helpers" / "package_data" / "images"


def _save(tmp_path, image, name, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


def test_every_example_loads_as_rgb_and_has_provenance():
    examples = ih.example_images()
    assert len({e.name for e in examples}) == len(examples)
    for e in examples:
        assert e.path().is_file(), e
        assert e.licence and e.shows and e.source
        assert e.package in ("skimage", "matplotlib", "sklearn", "interp_helpers")
        assert e.category in CATEGORIES and e.kind == e.category
        image = ih.load_image(e.name)
        assert image.mode == "RGB" and min(image.size) >= 200


def test_the_original_tutorials_subjects_are_all_there():
    by_category = {c: [e.name for e in ih.example_images() if e.category == c] for c in CATEGORIES}
    assert all(by_category.values()), by_category  # every category has at least one example
    for category in ("Nobel laureate", "painting", "scientific equipment", "scientific figure"):
        assert len(by_category[category]) >= 2, (category, by_category[category])
    names = {e.name for e in ih.example_images()}
    # notebooks and the CLI refer to these names
    assert {"curie", "barkla", "obama", "morisot_self_portrait", "morisot_mauve", "tanguy",
            "beaker", "erlenmeyer", "balance", "mortar", "grace_hopper", "hubble_deep_field"} <= names


def _readme_hashes():
    """``file -> sha256`` from the hash table of data/README.md (rows like | `x.jpg` | `abc...` |)."""
    text = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([\w.]+\.jpg)` \| `([0-9a-f]{64})` \|$", text, flags=re.MULTILINE))


def test_shipped_files_match_their_recorded_hashes_and_limits():
    shipped = [e for e in ih.example_images() if e.package == "interp_helpers"]
    folder = IMAGES
    on_disk = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    readme = _readme_hashes()
    # every file in the folder is an example, is listed in data/README.md, and nothing else is
    assert sorted(Path(e.file).name for e in shipped) == on_disk == sorted(readme)
    total = 0
    for e in shipped:
        data = e.path().read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert digest == e.sha256 == readme[Path(e.file).name], e.name
        with Image.open(e.path()) as image:
            assert image.format == "JPEG" and max(image.size) <= 800, (e.name, image.format, image.size)
        total += len(data)
    assert total <= 1_500_000, total
    for e in ih.example_images():  # the wheels' files are not ours: no hash claimed
        assert (e.sha256 is None) == (e.package != "interp_helpers"), e.name


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
    assert ih.load_image("curie").size == (232, 325)
    assert not any("__file__" in line for line in Path(images.__file__).read_text().splitlines()
                   if not line.lstrip().startswith("#"))


def test_a_missing_shipped_file_is_a_clear_error(monkeypatch):
    broken = dataclasses.replace(images._BY_NAME["curie"], file="package_data/images/gone.jpg")
    monkeypatch.setitem(images._BY_NAME, "curie", broken)
    with pytest.raises(FileNotFoundError, match="example 'curie'.*gone.jpg.*data files"):
        ih.load_image("curie")


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
    out = np.asarray(ih.load_image(_save(tmp_path, grey, "g.png")))
    assert out.shape == (8, 9, 3) and (out == 77).all()

    pal = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    assert ih.load_image(_save(tmp_path, pal, "p.png")).mode == "RGB"
    pal_t = Image.new("P", (4, 4), 0)
    pal_t.putpalette([255, 0, 0] * 256)
    pal_t.info["transparency"] = 0
    out = np.asarray(ih.load_image(_save(tmp_path, pal_t, "pt.png", transparency=0)))
    assert (out == 255).all()  # fully transparent pixels composite on white

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # transparent -> white
    rgba[0, 0, 3] = 255  # one opaque red-ish pixel
    out = np.asarray(ih.load_image(_save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png")))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)

    cmyk = Image.new("CMYK", (5, 5), (0, 255, 255, 0))  # pure red in CMYK
    out = np.asarray(ih.load_image(_save(tmp_path, cmyk, "c.jpg", quality=95)))
    assert out.shape == (5, 5, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_16_bit_is_rescaled_not_clipped(tmp_path):
    a = np.array([[0, 32896, 65535], [1000, 20000, 50000]], np.uint16)
    path = _save(tmp_path, Image.fromarray(a), "sixteen.png")
    out = np.asarray(ih.load_image(path))[..., 0]
    np.testing.assert_array_equal(out, np.round(a / 257.0).astype(np.uint8))
    assert len(np.unique(out)) == 6  # clipping to 255 would have collapsed values
    np.testing.assert_array_equal(np.asarray(ih.load_image(a))[..., 0], out)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (30, 10), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = _save(tmp_path, image, "rotated.jpg", exif=exif)
    assert ih.load_image(path).size == (10, 30)


def test_arrays_and_pil_images():
    assert ih.load_image(np.zeros((5, 6, 3), np.uint8)).size == (6, 5)
    assert ih.load_image(np.ones((3, 5, 6), np.float32)).size == (6, 5)  # channels first
    assert ih.load_image(np.zeros((5, 6), bool)).mode == "RGB"
    assert ih.load_image(Image.new("L", (3, 3))).mode == "RGB"
    with pytest.raises(ValueError, match="array"):
        ih.load_image(np.full((4, 4), 2.0))  # floats outside [0, 1]
    with pytest.raises(ValueError, match="array"):
        ih.load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        ih.load_image(np.full((4, 4), np.nan))
    with pytest.raises(TypeError, match="source"):
        ih.load_image(12)


def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_bad_files_raise_errors_naming_the_source(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        ih.load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.jpg"):
        ih.load_image(text)
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(OSError, match="truncated.png"):
        ih.load_image(truncated)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(30000, 30000))  # 900 megapixels declared in a tiny file
    with pytest.raises(ValueError, match="bomb.png.*decompression bomb"):
        ih.load_image(bomb)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        ih.load_image(tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match="not a file"):
        ih.load_image(tmp_path)
    with pytest.raises(ValueError, match="max_pixels"):
        ih.load_image("chelsea", max_pixels=0)


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    delay = 0.0

    def do_GET(self):  # noqa: N802
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
    assert ih.load_image(server(buf.getvalue())).size == (7, 5)
    slow = server(buf.getvalue(), delay=5.0)
    start = time.perf_counter()
    with pytest.raises(OSError, match="photo.png"):
        ih.load_image(slow, timeout=0.5)
    assert time.perf_counter() - start < 3.0
    with pytest.raises(ValueError, match="exceeds"):
        ih.load_image(server(buf.getvalue()), max_bytes=10)
