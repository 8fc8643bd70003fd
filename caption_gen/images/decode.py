"""Decoding and validation of discovered images: bytes → content hash → Pillow → RGB.

DESIGN §3 (images). :func:`decode_image` never lets a bad file crash a run: every failure is an
:class:`ImageRejected` with a machine-readable ``reason`` (the reject row's ``reason``):

================================  ==================================================================
``decode:missing``                the file does not exist
``decode:unreadable``             it exists but reading it failed (permissions, I/O error)
``decode:empty``                  zero bytes
``decode:too_large``              more than ``max_bytes`` bytes, or more than ``max_pixels`` pixels
                                  (decompression-bomb guard: checked on the header, before decoding)
``decode:not_an_image``           Pillow does not recognise the format (e.g. a text file named .jpg)
``decode:truncated``              the pixel data ends early
``decode:corrupt``                any other decoder error
``decode:unsupported_mode``       a pixel mode that cannot be turned into RGB
``discovery:duplicate``           same bytes as an image seen earlier (``detail`` names it)
================================  ==================================================================

Normalisation to RGB (:func:`to_rgb`), choices documented and tested:

* EXIF orientation is applied first (``ImageOps.exif_transpose``); width/height are those after it;
* alpha (``RGBA``, ``LA``, ``PA``, ``P`` with a ``transparency`` entry, ...) is composited onto a
  **white** background — pedestrian crops with cut-out backgrounds then look like studio shots
  rather than black silhouettes;
* 16/32-bit integer grey (``I;16*``, ``I``) is read as 16-bit linear and scaled by 1/257 to 8 bit
  (values clipped to [0, 65535]); float grey (``F``) is taken as [0, 1] when its maximum is ≤ 1,
  else as [0, 255] (clipped);
* CMYK and every other mode go through Pillow's ``convert("RGB")`` (no ICC colour management).

Only the first frame of multi-frame files (GIF, TIFF) is used.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from caption_gen.corpus.schema import image_id_from_sha256
from caption_gen.images.discovery import ImageRef

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_HASH_CHUNK = 1 << 20
_WHITE = (255, 255, 255)
_UINT16_TO_UINT8 = 257.0
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageRejected(Exception):
    """An image that cannot be used; ``reason`` groups rejects, ``detail`` explains this one."""

    def __init__(self, reason: str, detail: str, *, ref: ImageRef | None = None, sha256: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ref = ref
        self.sha256 = sha256

    def to_reject_row(self, ref: ImageRef | None = None, sha256: str | None = None) -> dict:
        """A ``REJECT_SCHEMA`` row (stage = the part of ``reason`` before ``:``)."""
        from caption_gen.corpus.rows import reject_row

        ref = ref or self.ref
        if ref is None:
            raise ValueError("to_reject_row needs the ImageRef of the rejected image")
        sha = sha256 or self.sha256
        return reject_row(
            image_id=image_id_from_sha256(sha) if sha else None,
            image_path=ref.path,
            image_sha256=sha,
            stage=self.reason.split(":", 1)[0],
            reason=self.reason,
            reasons=[self.reason],
            detail=self.detail,
        )


@dataclass
class DecodedImage:
    """A decoded RGB image (EXIF orientation applied) and its identity."""

    ref: ImageRef
    image: Image.Image = field(repr=False)
    sha256: str
    image_id: str
    width: int
    height: int


class NotARegularFile(OSError):
    """A local path that is a FIFO, socket, device or folder: never opened (a FIFO blocks ``open``)."""


def _open_binary(uri: str):
    if "://" in uri:
        import fsspec

        return fsspec.open(uri, "rb").open()
    try:
        mode = os.stat(uri).st_mode
    except FileNotFoundError:
        raise
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"{uri}: not a regular file ({_file_type(mode)})")
    return open(uri, "rb")


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def hash_file(uri: str) -> str:
    """sha256 hex digest of the raw bytes at ``uri`` (local path or fsspec URL), streamed."""
    digest = hashlib.sha256()
    with _open_binary(uri) as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_bytes(ref: ImageRef, max_bytes: int) -> bytes:
    try:
        with _open_binary(ref.uri) as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageRejected("decode:missing", f"{ref.uri}: no such file", ref=ref) from exc
    except NotARegularFile as exc:
        raise ImageRejected("discovery:not_a_file", str(exc), ref=ref) from exc
    except (OSError, ValueError) as exc:
        raise ImageRejected("decode:unreadable", f"{ref.uri}: {exc}", ref=ref) from exc
    if len(data) > max_bytes:
        raise ImageRejected("decode:too_large", f"{ref.uri}: more than {max_bytes} bytes", ref=ref)
    return data


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Normalise any Pillow image to 8-bit RGB (see module docstring for the choices)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info) or (
        mode in ("L", "RGB") and "transparency" in im.info
    ):
        return _composite_on_white(im)
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        grey = np.clip(np.rint(np.clip(arr, 0, 65535) / _UINT16_TO_UINT8), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        arr = np.nan_to_num(arr)
        scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
        grey = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return im.convert("RGB")


def decode_image(
    ref: ImageRef,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DecodedImage:
    """Read, hash, decode and normalise one image; raise :class:`ImageRejected` on any problem.

    The pixel budget is checked on the header (before pixel data is decoded); Pillow's own
    decompression-bomb warning/error is also caught (its global ``MAX_IMAGE_PIXELS`` is left alone).
    """
    data = _read_bytes(ref, max_bytes)
    if not data:
        raise ImageRejected("decode:empty", f"{ref.uri}: zero bytes", ref=ref)
    sha = hashlib.sha256(data).hexdigest()

    def reject(reason: str, detail: str) -> ImageRejected:
        return ImageRejected(reason, f"{ref.uri}: {detail}", ref=ref, sha256=sha)

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise reject("decode:too_large", str(exc)) from exc
        except UnidentifiedImageError as exc:
            raise reject("decode:not_an_image", "not a recognised image format") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise reject("decode:corrupt", f"header: {exc}") from exc
        w, h = im.size
        if w <= 0 or h <= 0:
            raise reject("decode:corrupt", f"invalid size {w}x{h}")
        if w * h > max_pixels:
            raise reject("decode:too_large", f"{w}x{h} = {w * h} pixels > budget {max_pixels}")
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise reject("decode:too_large", str(exc)) from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            msg = str(exc)
            reason = "decode:truncated" if "truncat" in msg.lower() or isinstance(exc, EOFError) else "decode:corrupt"
            raise reject(reason, msg or type(exc).__name__) from exc
    try:
        im = ImageOps.exif_transpose(im) or im
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, ZeroDivisionError):
        pass  # unreadable EXIF: keep the stored orientation rather than reject a decodable image
    try:
        rgb = to_rgb(im)
    except (ValueError, OSError) as exc:
        raise reject("decode:unsupported_mode", f"mode {im.mode}: {exc}") from exc
    return DecodedImage(
        ref=ref, image=rgb, sha256=sha, image_id=image_id_from_sha256(sha), width=rgb.width, height=rgb.height
    )


def iter_images(
    refs: Iterable[ImageRef],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    seen: dict[str, str] | None = None,
) -> Iterator[DecodedImage | ImageRejected]:
    """Decode ``refs`` in order, yielding a :class:`DecodedImage` or an :class:`ImageRejected` each.

    Identical content at a second path yields ``ImageRejected("discovery:duplicate", ...)`` naming
    the first path. ``seen`` (sha256 → first path) can be shared across calls / shards.
    """
    seen = {} if seen is None else seen
    for ref in refs:
        try:
            decoded = decode_image(ref, max_pixels=max_pixels, max_bytes=max_bytes)
        except ImageRejected as rej:
            if rej.sha256 is not None:
                first = seen.get(rej.sha256)
                if first is not None and first != ref.path:
                    yield ImageRejected(
                        "discovery:duplicate", f"same content as {first}", ref=ref, sha256=rej.sha256
                    )
                    continue
                seen.setdefault(rej.sha256, ref.path)
            yield rej
            continue
        first = seen.get(decoded.sha256)
        if first is not None and first != ref.path:
            yield ImageRejected("discovery:duplicate", f"same content as {first}", ref=ref, sha256=decoded.sha256)
            continue
        seen[decoded.sha256] = ref.path
        yield decoded


def find_duplicates(refs: Iterable[ImageRef]) -> tuple[list[tuple[ImageRef, str]], list[ImageRejected]]:
    """Hash every ref (no decoding): ``(unique (ref, sha256) in order, duplicate rejects)``.

    For splitting work into shards before decoding: the first path (in the given order) of each
    content wins; unreadable files are kept in ``unique`` with an empty hash so decode rejects them;
    a FIFO, socket or device with an image name (never opened: reading a FIFO blocks) is returned among
    the rejects as ``discovery:not_a_file``.
    """
    seen: dict[str, str] = {}
    unique: list[tuple[ImageRef, str]] = []
    dups: list[ImageRejected] = []
    for ref in refs:
        try:
            sha = hash_file(ref.uri)
        except NotARegularFile as exc:
            dups.append(ImageRejected("discovery:not_a_file", str(exc), ref=ref))
            continue
        except (OSError, ValueError):
            unique.append((ref, ""))
            continue
        if sha in seen:
            dups.append(ImageRejected("discovery:duplicate", f"same content as {seen[sha]}", ref=ref, sha256=sha))
        else:
            seen[sha] = ref.path
            unique.append((ref, sha))
    return unique, dups
