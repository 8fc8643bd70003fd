"""Shard planning by content, shared by ``pedes caption`` and the ``build-corpus`` flow (DESIGN §2:
a rerun skips done work and never duplicates rows; a killed run loses at most the shards in flight).

A plan is computed from the images found *and what the corpus already holds*, never from positions in
a file list alone:

1. **discover + hash** every image (sorted by path; :func:`caption_gen.images.decode.find_duplicates`):
   the image id is the content hash, later copies of a content become ``discovery:duplicate`` rejects,
   FIFOs/devices with an image name ``discovery:not_a_file`` rejects;
2. **what is done** (:func:`read_done`): the image ids in the caption and reject files of the done shards
   (an image is covered by its content; a path only for files that have no readable content), and the (image, kind, model) jobs a done shard
   holds only as *retryable* rejects (:data:`RETRYABLE_REASONS`: the backend failed, the text was never
   judged; image-level rejects without a kind stand for every configured job). A done shard that cannot be read raises :class:`~caption_gen.corpus.errors.CorruptCorpusFileError`
   naming the shard and the command that redoes it;
3. the images **not covered**, in path order, are cut into shards of ``shard_size`` numbered with the
   lowest indices that are not done — for a resumed run over an unchanged folder this is exactly the
   positional layout, so the rerun redoes exactly the missing shards; for a folder that gained images (in
   any sort position) only the new ones are planned; a changed ``shard_size`` loses nothing;
4. an uncovered path whose content is already in the corpus under another path becomes a
   ``discovery:duplicate`` reject (the row key stays unique);
5. a done shard with retryable rejects becomes a **redo** shard under its own index (:attr:`ShardPlan.jobs`):
   only those jobs are generated again and the writer replaces the shard — kept rows plus the new ones —
   atomically (``CorpusWriter.write_shard(..., redo=...)``). Validation rejects are final and never redone.

Each (image, kind, model) therefore ends up exactly once in the corpus, as a caption row or a reject,
across any sequence of runs, kills and outages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caption_gen.corpus.schema import RETRYABLE_REASONS
from caption_gen.images.decode import ImageRejected, find_duplicates
from caption_gen.images.discovery import ImageRef, discover_images

__all__ = ["RETRYABLE_REASONS", "DoneState", "RunPlan", "ShardPlan", "plan_run", "plan_shards", "read_done"]

#: (kind, model) of one caption job; ``(None, None)`` in :class:`DoneState` = every configured job.
Job = tuple[str, str]


@dataclass(frozen=True)
class ShardPlan:
    """One shard: images to caption (with their content hash, "" when unreadable) and image-level rejects.

    ``jobs`` is None for a new shard (every configured kind × model of every image); for a redo of a
    done shard it maps image path → the (kind, model) jobs to generate again."""

    index: int
    images: tuple[tuple[ImageRef, str], ...]
    duplicates: tuple[ImageRejected, ...] = field(default=())
    jobs: dict[str, tuple[Job, ...]] | None = field(default=None, hash=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.images) + len(self.duplicates)

    @property
    def redo(self) -> bool:
        return self.jobs is not None


@dataclass(frozen=True)
class RunPlan:
    """The shards to run (``shards``; done shards are not in it), plus what was found and what is done."""

    shards: tuple[ShardPlan, ...]
    image_root: str | None
    total_images: int
    done: frozenset[int] = frozenset()
    #: images found that the done shards already hold (caption rows or final rejects).
    covered: int = 0

    @property
    def pending_images(self) -> int:
        return sum(s.size for s in self.shards if not s.redo)


@dataclass
class DoneState:
    """What the done shards hold (:func:`read_done`)."""

    ids: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    #: shard → image path → (image_id, retryable jobs; ``(None, None)`` = every configured job).
    retry: dict[int, dict[str, tuple[str | None, set[tuple[str | None, str | None]]]]] = field(default_factory=dict)


def image_root_of(refs: list[ImageRef], explicit: str | None = None) -> str | None:
    """The folder ``image_path`` values are relative to: ``explicit``, else derived from the refs."""
    if explicit is not None:
        return explicit
    for ref in refs:
        if ref.uri.endswith(ref.path):
            root = ref.uri[: len(ref.uri) - len(ref.path)].rstrip("/")
            return root or "/"
    return None


def repair_hint(root: str | Path, shard: int) -> str:
    return f"redo it with: pedes corpus redo-shard {root} {shard}"


def read_done(root: str | Path, markers: dict[int, dict[str, Any]]) -> DoneState:
    """Image ids / paths covered by the done shards and their retryable rejects (module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caption_gen.corpus.errors import CorruptCorpusFileError

    state = DoneState()
    for index, stats in sorted(markers.items()):
        for key, columns in (("captions_file", ["image_id", "image_path"]),
                             ("rejects_file", ["image_id", "image_path", "reason", "kind", "model"])):
            rel = stats.get(key)
            if not rel:
                continue
            try:
                table = pq.read_table(Path(root) / rel, columns=columns)
            except (OSError, pa.ArrowException) as exc:
                raise CorruptCorpusFileError(
                    f"done shard {index} of corpus {root}: {rel} cannot be read ({type(exc).__name__}: {exc}); "
                    f"{repair_hint(root, index)}") from None
            ids = table.column("image_id").to_pylist()
            paths = table.column("image_path").to_pylist()
            if key == "captions_file":
                state.ids.update(i for i in ids if i)
                state.paths.update(p for p in paths if p)
                continue
            for iid, path, reason, kind, model in zip(ids, paths, table.column("reason").to_pylist(),
                                                      table.column("kind").to_pylist(),
                                                      table.column("model").to_pylist(), strict=True):
                if iid:
                    state.ids.add(iid)
                if path:
                    state.paths.add(path)
                if reason in RETRYABLE_REASONS and path:
                    entry = state.retry.setdefault(index, {}).setdefault(path, (iid, set()))
                    entry[1].add((kind, model) if kind is not None and model is not None else (None, None))
    return state


def _free_indices(done: Iterable[int]) -> Iterable[int]:
    taken = set(done)
    i = 0
    while True:
        if i not in taken:
            yield i
        i += 1


def plan_run(images: str | Path, *, shard_size: int, image_root: str | None = None,
             root: str | Path | None = None, markers: dict[int, dict[str, Any]] | None = None,
             jobs: Iterable[Job] = ()) -> RunPlan:
    """Discover ``images`` and plan the shards still to run against the done ``markers`` of the corpus at
    ``root`` (module docstring). ``jobs``: the configured (kind, model) pairs (for redo shards)."""
    from caption_gen.corpus.schema import image_id_from_sha256

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    refs = discover_images(images, root=image_root)
    unique, rejected = find_duplicates(refs)
    markers = markers or {}
    state = read_done(root, markers) if markers and root is not None else DoneState()
    all_jobs = tuple(jobs)

    entries: list[tuple[str, tuple[ImageRef, str] | None, ImageRejected | None]] = []
    by_path: dict[str, tuple[ImageRef, str]] = {}
    covered = 0
    for ref, sha in unique:
        by_path[ref.path] = (ref, sha)
        iid = image_id_from_sha256(sha) if sha else None
        if iid is not None and iid in state.ids:
            if ref.path in state.paths:
                covered += 1
            else:  # same content as a covered image, under a new path
                entries.append((ref.path, None, ImageRejected(
                    "discovery:duplicate", "same content as an image already in the corpus", ref=ref, sha256=sha)))
            continue
        if iid is None and ref.path in state.paths:  # unreadable before and now: its reject stands
            covered += 1
            continue
        entries.append((ref.path, (ref, sha), None))  # new content (a new file, or a file that changed)
    for rej in rejected:
        if rej.ref is not None and rej.ref.path in state.paths:
            covered += 1
            continue
        entries.append((rej.ref.path if rej.ref is not None else "", None, rej))
    entries.sort(key=lambda e: e[0])

    shards: list[ShardPlan] = []
    free = iter(_free_indices(markers))
    for start in range(0, len(entries), shard_size):
        part = entries[start : start + shard_size]
        shards.append(ShardPlan(index=next(free), images=tuple(e[1] for e in part if e[1] is not None),
                                duplicates=tuple(e[2] for e in part if e[2] is not None)))
    for index, paths in sorted(state.retry.items()):
        redo_images: list[tuple[ImageRef, str]] = []
        redo_jobs: dict[str, tuple[Job, ...]] = {}
        for path, (iid, pairs) in sorted(paths.items()):
            found = by_path.get(path)
            if found is None or not found[1]:
                continue  # the file is gone (or unreadable): its reject stays
            ref, sha = found
            image_id = image_id_from_sha256(sha)
            if iid is not None and iid != image_id:
                continue  # the file changed since: the old reject stays, the new content is planned above
            want = all_jobs if (None, None) in pairs else tuple(j for j in all_jobs if j in pairs)
            if want:
                redo_images.append((ref, sha))
                redo_jobs[ref.path] = want
        if redo_images:
            shards.append(ShardPlan(index=index, images=tuple(redo_images), jobs=redo_jobs))
    return RunPlan(tuple(shards), image_root_of(refs, image_root), len(refs), frozenset(markers), covered)


def plan_shards(images: str | Path, *, shard_size: int, image_root: str | None = None) -> RunPlan:
    """The plan of a fresh run (no corpus yet): every image, shards numbered from 0."""
    return plan_run(images, shard_size=shard_size, image_root=image_root)
