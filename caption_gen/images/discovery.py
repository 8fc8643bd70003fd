"""Image discovery: a directory walk, a list file or a glob pattern, on a local path or an fsspec URL.

DESIGN §3 (images). Every source becomes a deterministic, sorted list of :class:`ImageRef`; nothing is
decoded here (see :mod:`caption_gen.images.decode`). Choices:

* a **directory** is walked recursively; files are kept when their extension (case-insensitive) is
  in ``extensions``; hidden files and folders (name starting with ``.``) are skipped;
* a **list file** (``.txt`` / ``.lst``) holds one path per line (blank lines and ``#`` comments are
  skipped); a relative line is relative to the list file's folder, an absolute line or URL is used
  as is. Listed files are *not* filtered by extension and not checked for existence: a missing or
  non-image entry becomes a reject row at decode time, never a silent drop;
* a **glob** (``*``, ``?`` or ``[`` in the source) is expanded by the filesystem, filtered by extension;
  as in a shell, hidden files and folders are not matched.

``ImageRef.path`` (the corpus' ``image_path``) is relative to ``root`` (default: the directory, the
list file's folder, or the glob's fixed prefix). A file outside ``root`` keeps its full URI as path.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pedes_core.errors import InputError

DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
LIST_FILE_SUFFIXES: tuple[str, ...] = (".txt", ".lst")
_GLOB_CHARS = ("*", "?", "[")


@dataclass(frozen=True, order=True)
class ImageRef:
    """One discovered image: ``path`` relative to the image root (posix), ``uri`` to open it."""

    path: str
    uri: str


def _fs_and_path(source: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    text = str(source)
    if "://" not in text:
        text = str(Path(text).expanduser().absolute())
    fs, path = fsspec.core.url_to_fs(text)
    return fs, path


def _uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Absolute local path for local files, the full URL otherwise."""
    if isinstance(fs, LocalFileSystem):
        return str(Path(path))
    return fs.unstrip_protocol(path)


def _strip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs._strip_protocol(path).rstrip("/") or "/"


def _relative(path: str, root: str) -> str | None:
    root = root.rstrip("/")
    if root and (path == root or not path.startswith(root + "/")):
        return None
    return path[len(root) + 1 :] if root else path.lstrip("/")


def _has_ext(path: str, extensions: Iterable[str]) -> bool:
    lower = path.lower()
    return any(lower.endswith(ext.lower()) for ext in extensions)


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def _glob_prefix(path: str) -> str:
    parts = path.split("/")
    fixed: list[str] = []
    for part in parts:
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    return "/".join(fixed) or "/"


def discover_images(
    source: str | Path,
    *,
    root: str | Path | None = None,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
) -> list[ImageRef]:
    """List the images of ``source`` (directory, list file or glob; local or fsspec), sorted by path.

    Raises :class:`~pedes_core.errors.InputError` when ``source`` does not exist or a list file
    cannot be read. Duplicated content is not detected here (that needs the bytes): see
    :func:`caption_gen.images.decode.iter_images`.
    """
    extensions = tuple(extensions)
    fs, path = _fs_and_path(source)
    path = _strip(fs, path)
    root_path: str | None = None
    if root is not None:
        root_fs, rp = _fs_and_path(root)
        root_path = _strip(root_fs, rp)

    files: list[str]
    if any(c in path for c in _GLOB_CHARS):
        base = _glob_prefix(path)
        files = [
            p
            for p in fs.glob(path)
            if _has_ext(p, extensions) and not _hidden(_relative(_strip(fs, p), base) or "") and fs.isfile(p)
        ]
    elif fs.isdir(path):
        base = path
        files = [
            p
            for p in fs.find(path)
            if _has_ext(p, extensions) and not _hidden(_relative(_strip(fs, p), path) or "")
        ]
    elif fs.isfile(path):
        if not path.lower().endswith(LIST_FILE_SUFFIXES):
            raise InputError(
                f"image source {source}: a file that is not a list file ({', '.join(LIST_FILE_SUFFIXES)}); "
                "give a directory, a list file or a glob"
            )
        base = posixpath.dirname(path)
        try:
            text = fs.cat_file(path).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"image list {source}: cannot be read ({exc})") from exc
        refs: list[ImageRef] = []
        base_root = root_path if root_path is not None else base
        for line in text.splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if "://" in entry:
                efs, epath = fsspec.core.url_to_fs(entry)
            elif posixpath.isabs(entry) or Path(entry).is_absolute():
                efs, epath = fs, entry
            else:
                efs, epath = fs, posixpath.join(base, entry)
            epath = posixpath.normpath(_strip(efs, epath))
            rel = _relative(epath, base_root) if efs.protocol == fs.protocol else None
            refs.append(ImageRef(path=rel if rel is not None else _uri(efs, epath), uri=_uri(efs, epath)))
        return sorted(set(refs))
    else:
        raise InputError(f"image source {source}: no such directory, list file or glob")

    base_root = root_path if root_path is not None else base
    refs = []
    for p in files:
        sp = _strip(fs, p)
        rel = _relative(sp, base_root)
        refs.append(ImageRef(path=rel if rel is not None else _uri(fs, sp), uri=_uri(fs, sp)))
    return sorted(set(refs))
