"""Image fixtures built on the fly: normal, odd-mode and broken files of every kind the decoder handles."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXIF_ORIENTATION_TAG = 0x0112
ROTATE_90_CW = 6  # EXIF orientation 6: display = stored image rotated 90° clockwise


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb) with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def image_zoo(tmp_path_factory) -> dict[str, Path]:
    """name → file, one per case the decoder must handle."""
    root = tmp_path_factory.mktemp("zoo")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        files[name] = p

    rgb = Image.new("RGB", (16, 32), (10, 200, 30))
    put("plain.png", _save(rgb, "PNG"))
    # stored 40 wide x 20 high: left half red, right half blue; EXIF says rotate 90° CW on display
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = ROTATE_90_CW
    put("exif_rotated.jpg", jpeg_bytes(stored, exif=exif))
    put("cmyk.jpg", jpeg_bytes(Image.new("CMYK", (16, 16), (0, 255, 255, 0))))  # pure red in CMYK
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, index 1 blue
    pal.paste(1, (0, 0, 4, 8))  # left half index 1
    put("palette_transparent.png", _save(pal, "PNG", transparency=1))  # index 1 fully transparent
    put("grey16.png", _save(Image.fromarray(np.full((8, 8), 0x8080, dtype=np.uint16)), "PNG"))
    put("rgba_half.png", _save(Image.new("RGBA", (8, 8), (255, 0, 0, 128)), "PNG"))
    put("la.png", _save(Image.new("LA", (8, 8), (0, 0)), "PNG"))  # black, fully transparent
    put("grey.gif", _save(Image.new("L", (8, 8), 77), "GIF"))
    put("empty.jpg", b"")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = jpeg_bytes(noise)
    put("truncated.jpg", full[: len(full) // 2])
    put("text.jpg", b"this is not an image, just a text file that pretends to be one\n" * 4)
    put("bomb.png", huge_png_header(100_000, 100_000))
    put("dup/a.png", _save(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG"))
    put("dup/b.png", (root / "dup/a.png").read_bytes())
    return files


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()
