"""Deterministic shards of a discovered image set (issue 3 item 5: resume skips done shards).

Discovery sorts image paths, so shard ``i`` always holds positions ``[i*S, (i+1)*S)`` of the same
list — a rerun over the same folder re-derives the same shards and skips the done ones.

Duplicate content is found up front by hashing every file (:func:`find_duplicates`): the first path
(in sorted order) of each content is captioned, later copies become ``discovery:duplicate`` rejects in
the shard their position falls in. Hashing everything before captioning is what keeps the row key
unique across shards even when a rerun skips the shard that holds the first copy (it costs one read of
every file per run; the bytes are small next to generation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caption_gen.images.decode import ImageRejected, find_duplicates
from caption_gen.images.discovery import ImageRef, discover_images


@dataclass(frozen=True)
class ShardPlan:
    """One shard: the images to caption (with their content hash, "" when unreadable) and duplicates."""

    index: int
    images: tuple[tuple[ImageRef, str], ...]
    duplicates: tuple[ImageRejected, ...] = field(default=())

    @property
    def size(self) -> int:
        return len(self.images) + len(self.duplicates)


@dataclass(frozen=True)
class RunPlan:
    shards: tuple[ShardPlan, ...]
    image_root: str | None
    total_images: int


def image_root_of(refs: list[ImageRef], explicit: str | None = None) -> str | None:
    """The folder ``image_path`` values are relative to: ``explicit``, else derived from the refs."""
    if explicit is not None:
        return explicit
    for ref in refs:
        if ref.uri.endswith(ref.path):
            root = ref.uri[: len(ref.uri) - len(ref.path)].rstrip("/")
            return root or "/"
    return None


def plan_shards(images: str | Path, *, shard_size: int, image_root: str | None = None) -> RunPlan:
    """Discover ``images`` and cut them into shards of ``shard_size`` positions."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    refs = discover_images(images, root=image_root)
    unique, dups = find_duplicates(refs)
    sha_of = {ref.path: sha for ref, sha in unique}
    dup_of = {d.ref.path: d for d in dups if d.ref is not None}
    shards = []
    for index, start in enumerate(range(0, len(refs), shard_size)):
        part = refs[start : start + shard_size]
        shards.append(
            ShardPlan(
                index=index,
                images=tuple((r, sha_of[r.path]) for r in part if r.path in sha_of),
                duplicates=tuple(dup_of[r.path] for r in part if r.path in dup_of),
            )
        )
    return RunPlan(tuple(shards), image_root_of(refs, image_root), len(refs))
