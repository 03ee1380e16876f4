"""Rebuild the bundled example photos in interp_helpers/package_data/images/ from their Debian/PyPI sources.

Not run by the tests or at install time; kept so that every committed file can be
re-derived. Fetch and unpack the sources first (no other network access is needed)::

    mkdir -p /tmp/src && cd /tmp/src
    apt-get download python-xraylarch-doc wordpress-theme-twentytwentyone kalzium-data gcompris-qt-data
    for p in *.deb; do mkdir -p x/${p%%_*}; dpkg-deb -x $p x/${p%%_*}; done
    pip download --no-deps --no-binary :all: face_recognition==1.3.0 && tar xzf face_recognition-1.3.0.tar.gz -C x
    python tools/read_qt_rcc.py x/gcompris-qt-data/usr/share/gcompris-qt/rcc/details.rcc \
        PortraitOfPereTanguy_background x/gcompris-rcc
    python tools/build_example_images.py /tmp/src/x

Files already JPEG and at most 800 px on the long side are copied byte for byte (their
SHA-256 then equals the source's); the others are downscaled (Lanczos) to 800 px on the
long side and saved as baseline JPEG, quality 85, no metadata. Prints each file's SHA-256.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from PIL import Image

LONG_SIDE = 800
QUALITY = 85
OUT = Path(__file__).resolve().parents[1] / "interp_helpers" / "package_data" / "images"

XRAY = "python-xraylarch-doc/usr/share/doc/python-xraylarch-doc/examples/xraytable/images"
WP = "wordpress-theme-twentytwentyone/usr/share/wordpress/wp-content/themes/twentytwentyone/assets/images"
KALZIUM = "kalzium-data/usr/share/kalzium/data/toolpics"
SOURCES = {
    "curie.jpg": f"{XRAY}/Marie_Curie.jpg",
    "barkla.jpg": f"{XRAY}/Charles_Barkla.jpg",
    "obama.jpg": "face_recognition-1.3.0/tests/test_images/obama.jpg",
    "morisot_self_portrait.jpg": f"{WP}/self-portrait-1885.jpg",
    "morisot_mauve.jpg": f"{WP}/young-woman-in-mauve.jpg",
    "tanguy.jpg": "gcompris-rcc/gcompris/src/activities/details/resource/image/PortraitOfPereTanguy_background.webp",
    "beaker.jpg": f"{KALZIUM}/becherglas.jpg",
    "erlenmeyer.jpg": f"{KALZIUM}/erlenmeyerkolben.jpg",
    "balance.jpg": f"{KALZIUM}/waage.jpg",
    "mortar.jpg": f"{KALZIUM}/moerser.jpg",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(root: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rel in SOURCES.items():
        src, dst = root / rel, OUT / name
        with Image.open(src) as image:
            size, fmt = image.size, image.format
            if fmt == "JPEG" and max(size) <= LONG_SIDE:
                shutil.copyfile(src, dst)
                how = "copied unchanged"
            else:
                scale = min(1.0, LONG_SIDE / max(size))
                new = (round(size[0] * scale), round(size[1] * scale))
                image = image.convert("L" if image.mode == "L" else "RGB")
                image.resize(new, Image.Resampling.LANCZOS).save(dst, "JPEG", quality=QUALITY, optimize=True)
                how = f"{fmt} {size[0]}x{size[1]} -> JPEG {new[0]}x{new[1]} q{QUALITY}"
        print(f"{name:28s} {sha256(dst)}  {dst.stat().st_size:>7} B  {how}  (source sha256 {sha256(src)})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]))
