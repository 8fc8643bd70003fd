"""Incremental shard planning for ``build-corpus``: which images still need captions, in which shards.

``caption_gen.captioning.plan.plan_shards`` cuts the sorted image list into positional shards, which is
exact for a resumed run over an unchanged folder but not for a folder that *gained* images: new files
shift later images into other positions, so a done shard index no longer names the same images.
The flow therefore plans against what the corpus already holds (choice documented here, tested in
``tests/flows/test_flow_build_corpus.py``):

1. *covered* = every ``image_path`` and ``image_sha256`` in the caption and reject files of the done
   shards (an image with a reject row is covered too: a done shard is final, as in ``pedes caption``);
2. each positional shard that is **not done** keeps its index and its uncovered images — a rerun over an
   unchanged folder (e.g. after SIGKILL) therefore runs exactly the missing shards;
3. uncovered images that fall in positions of **done** shards (new files that sorted in between) go, in
   sorted order, to fresh shards numbered after every positional and done index;
4. an uncovered file whose content (sha256) is already in the corpus under another path becomes a
   ``discovery:duplicate`` reject, so the row key ``(image_id, kind, model, …)`` stays unique.

Each (image, kind, model) is therefore captioned once across any sequence of runs, crashes included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def covered_images(root: str | Path, markers: dict[int, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """``(image paths, image sha256s)`` present in the done shards' caption and reject files."""
    import pyarrow.parquet as pq

    paths: set[str] = set()
    shas: set[str] = set()
    for stats in markers.values():
        for key in ("captions_file", "rejects_file"):
            rel = stats.get(key)
            if not rel:
                continue
            table = pq.read_table(Path(root) / rel, columns=["image_path", "image_sha256"])
            paths.update(p for p in table.column("image_path").to_pylist() if p)
            shas.update(s for s in table.column("image_sha256").to_pylist() if s)
    return paths, shas


def pending_shards(plan: Any, root: str | Path, markers: dict[int, dict[str, Any]], shard_size: int) -> list[Any]:
    """The :class:`~caption_gen.captioning.plan.ShardPlan` objects still to run (module docstring)."""
    from caption_gen.captioning.plan import ShardPlan
    from caption_gen.images.decode import ImageRejected

    if not markers:
        return list(plan.shards)
    paths, shas = covered_images(root, markers)

    def uncovered(shard: Any) -> tuple[list[tuple[Any, str]], list[Any]]:
        images, dups = [], list(d for d in shard.duplicates if d.ref is None or d.ref.path not in paths)
        for ref, sha in shard.images:
            if ref.path in paths:
                continue
            if sha and sha in shas:
                dups.append(ImageRejected("discovery:duplicate", "same content as an image already in the corpus",
                                          ref=ref, sha256=sha))
            else:
                images.append((ref, sha))
        return images, dups

    out: list[Any] = []
    leftover_images: list[tuple[Any, str]] = []
    leftover_dups: list[Any] = []
    for shard in plan.shards:
        images, dups = uncovered(shard)
        if shard.index in markers:
            leftover_images += images
            leftover_dups += dups
        elif images or dups:
            out.append(ShardPlan(index=shard.index, images=tuple(images), duplicates=tuple(dups)))
    entries = sorted([(ref.path, (ref, sha), None) for ref, sha in leftover_images]
                     + [(d.ref.path, None, d) for d in leftover_dups], key=lambda e: e[0])
    next_index = max([len(plan.shards) - 1, *markers]) + 1
    for start in range(0, len(entries), shard_size):
        part = entries[start:start + shard_size]
        out.append(ShardPlan(index=next_index, images=tuple(e[1] for e in part if e[1] is not None),
                             duplicates=tuple(e[2] for e in part if e[2] is not None)))
        next_index += 1
    return out
