"""What a benchmark loader returns: one :class:`ImageRecord` per annotated image and one
:class:`PedesSample` per (image, caption) pair (DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Split names a benchmark can hold (a loader maps each format onto these).
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ImageRecord:
    """One annotation entry: an image with its person id and every caption written for it.

    ``rel_path`` is the annotation's path relative to the image root (posix separators),
    ``image_path`` the absolute path, ``person_id`` the id written in the annotation file,
    ``index`` the entry's position in that file (for error messages and stable ordering) and
    ``source`` the sub-dataset an entry comes from where the format records it (UFine3C).
    """

    rel_path: str
    image_path: Path
    person_id: int
    captions: list[str] = field(hash=False)
    split: str
    index: int = -1
    source: str | None = None


@dataclass(frozen=True)
class PedesSample:
    """One (image, caption) pair.

    On the ``train`` split ``person_id`` is the remapped label in ``0..N-1`` (sorted original ids);
    on ``val``/``test`` it is the original id (evaluation only compares ids for equality).
    ``original_person_id`` always holds the id from the annotation file and ``caption_index`` the
    caption's position in its entry's ``captions`` list.
    """

    image_path: Path
    rel_path: str
    person_id: int
    caption: str
    caption_index: int
    split: str
    original_person_id: int
