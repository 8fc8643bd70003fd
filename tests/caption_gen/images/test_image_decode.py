"""Decoding: every odd mode becomes correct RGB, every broken file a reject with its reason."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from caption_gen.corpus.schema import REJECT_SCHEMA, image_id_from_sha256
from caption_gen.images import ImageRef, ImageRejected, decode_image, discover_images, hash_file, iter_images


def ref(path) -> ImageRef:
    return ImageRef(path=path.name, uri=str(path))


def px(im: Image.Image, xy) -> tuple[int, int, int]:
    return im.getpixel(xy)


def close(a, b, tol=3) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b, strict=True))


def test_plain_png_identity(image_zoo):
    d = decode_image(ref(image_zoo["plain.png"]))
    sha = hashlib.sha256(image_zoo["plain.png"].read_bytes()).hexdigest()
    assert (d.sha256, d.image_id) == (sha, image_id_from_sha256(sha))
    assert hash_file(str(image_zoo["plain.png"])) == sha
    assert d.image.mode == "RGB" and (d.width, d.height) == (16, 32)
    assert px(d.image, (5, 5)) == (10, 200, 30)


def test_exif_orientation_applied(image_zoo):
    d = decode_image(ref(image_zoo["exif_rotated.jpg"]))
    # stored 40x20 (left red, right blue); rotated 90° clockwise → 20x40, red on top, blue below
    assert (d.width, d.height) == (20, 40)
    assert close(px(d.image, (10, 5)), (255, 0, 0), tol=40)
    assert close(px(d.image, (10, 34)), (0, 0, 255), tol=40)


def test_cmyk_jpeg_becomes_rgb(image_zoo):
    d = decode_image(ref(image_zoo["cmyk.jpg"]))
    assert d.image.mode == "RGB"
    assert close(px(d.image, (8, 8)), (255, 0, 0), tol=12)


def test_palette_with_transparency_composited_on_white(image_zoo):
    d = decode_image(ref(image_zoo["palette_transparent.png"]))
    assert px(d.image, (1, 4)) == (255, 255, 255)  # transparent index → white background
    assert px(d.image, (6, 4)) == (255, 0, 0)  # opaque red stays red


def test_sixteen_bit_grey_scaled_to_eight_bit(image_zoo):
    assert Image.open(image_zoo["grey16.png"]).mode in ("I;16", "I")
    d = decode_image(ref(image_zoo["grey16.png"]))
    assert px(d.image, (3, 3)) == (0x80, 0x80, 0x80)  # 0x8080 / 257 = 128


def test_alpha_composited_on_white(image_zoo):
    half = decode_image(ref(image_zoo["rgba_half.png"]))
    assert close(px(half.image, (2, 2)), (255, 127, 127), tol=2)
    la = decode_image(ref(image_zoo["la.png"]))
    assert px(la.image, (2, 2)) == (255, 255, 255)


def test_grey_gif(image_zoo):
    d = decode_image(ref(image_zoo["grey.gif"]))
    assert d.image.mode == "RGB" and close(px(d.image, (1, 1)), (77, 77, 77), tol=2)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "decode:empty"),
        ("truncated.jpg", "decode:truncated"),
        ("text.jpg", "decode:not_an_image"),
        ("bomb.png", "decode:too_large"),
    ],
)
def test_bad_files_are_rejected_with_reason(image_zoo, name, reason):
    with pytest.raises(ImageRejected) as info:
        decode_image(ref(image_zoo[name]))
    assert info.value.reason == reason
    assert str(image_zoo[name]) in info.value.detail
    row = info.value.to_reject_row(ref(image_zoo[name]))
    table = pa.Table.from_pylist([row], schema=REJECT_SCHEMA)
    assert table.column("reason").to_pylist() == [reason]
    assert table.column("stage").to_pylist() == ["decode"]


def test_pixel_budget_below_pillow_limit(image_zoo):
    with pytest.raises(ImageRejected) as info:
        decode_image(ref(image_zoo["plain.png"]), max_pixels=100)  # 16x32 = 512 pixels
    assert info.value.reason == "decode:too_large" and "512" in info.value.detail


def test_byte_budget(image_zoo):
    with pytest.raises(ImageRejected) as info:
        decode_image(ref(image_zoo["plain.png"]), max_bytes=10)
    assert info.value.reason == "decode:too_large"


def test_missing_file(tmp_path):
    with pytest.raises(ImageRejected) as info:
        decode_image(ImageRef(path="gone.jpg", uri=str(tmp_path / "gone.jpg")))
    assert info.value.reason == "decode:missing"
    assert info.value.to_reject_row()["image_sha256"] is None


def test_run_over_whole_zoo_never_raises_and_flags_duplicate(image_zoo):
    root = image_zoo["plain.png"].parent
    refs = discover_images(root)
    results = list(iter_images(refs))
    assert len(results) == len(refs) == len(image_zoo)
    rejected = {r.ref.path: r for r in results if isinstance(r, ImageRejected)}
    decoded = {r.ref.path for r in results if not isinstance(r, ImageRejected)}
    assert {p: r.reason for p, r in rejected.items()} == {
        "empty.jpg": "decode:empty",
        "truncated.jpg": "decode:truncated",
        "text.jpg": "decode:not_an_image",
        "bomb.png": "decode:too_large",
        "dup/b.png": "discovery:duplicate",
    }
    assert "dup/a.png" in rejected["dup/b.png"].detail
    assert rejected["dup/b.png"].to_reject_row()["stage"] == "discovery"
    assert "dup/a.png" in decoded
    rows = [r.to_reject_row() for r in rejected.values()]
    assert pa.Table.from_pylist(rows, schema=REJECT_SCHEMA).num_rows == 5


def test_fsspec_memory_image():
    import fsspec

    fs = fsspec.filesystem("memory")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(buf, format="PNG")
    fs.pipe("/zoo_mem/x.png", buf.getvalue())
    (only,) = discover_images("memory://zoo_mem")
    d = decode_image(only)
    assert (only.path, d.width, d.height) == ("x.png", 6, 4)
    assert hash_file(only.uri) == d.sha256
