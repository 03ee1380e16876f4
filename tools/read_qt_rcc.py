"""List or extract the files inside a Qt binary resource file (.rcc).

Used once to take Van Gogh's *Portrait of Pere Tanguy* out of gcompris-qt-data's
``details.rcc`` (see data/README.md). Supports rcc format versions 1-3 with
uncompressed and zlib-compressed entries (zstd entries are reported, not decoded).

    python tools/read_qt_rcc.py FILE.rcc                 # list paths and sizes
    python tools/read_qt_rcc.py FILE.rcc PATTERN OUTDIR  # extract paths containing PATTERN
"""
from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


def read_rcc(blob: bytes):
    """Yield ``(path, flags, payload)`` for every file in an rcc blob."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt rcc file (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise ValueError(f"unsupported rcc version {version}")
    entry = 14 if version == 1 else 22

    def name(offset):
        (length,) = struct.unpack(">H", blob[names + offset:names + offset + 2])
        start = names + offset + 6  # length (2) + hash (4)
        return blob[start:start + 2 * length].decode("utf-16-be")

    def walk(index, prefix):
        base = tree + index * entry
        name_offset, flags = struct.unpack(">IH", blob[base:base + 6])
        label = name(name_offset) if index else ""
        path = f"{prefix}/{label}" if label else prefix
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", blob[base + 6:base + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (data_offset,) = struct.unpack(">I", blob[base + 10:base + 14])
        (size,) = struct.unpack(">I", blob[data + data_offset:data + data_offset + 4])
        payload = blob[data + data_offset + 4:data + data_offset + 4 + size]
        if flags & COMPRESSED:
            payload = zlib.decompress(payload[4:])  # 4-byte big-endian uncompressed size, then zlib
        yield path, flags, payload

    yield from walk(0, "")


def main(argv):
    if len(argv) not in (1, 3):
        print(__doc__, file=sys.stderr)
        return 2
    blob = Path(argv[0]).read_bytes()
    for path, flags, payload in read_rcc(blob):
        if len(argv) == 1:
            print(f"{len(payload):>9} {'zstd ' if flags & COMPRESSED_ZSTD else ''}{path}")
        elif argv[1] in path:
            if flags & COMPRESSED_ZSTD:
                print(f"skipped (zstd): {path}", file=sys.stderr)
                continue
            out = Path(argv[2]) / path.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(payload)
            print(f"wrote {out} ({len(payload)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
