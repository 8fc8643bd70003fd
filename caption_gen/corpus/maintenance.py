"""Repairs of a corpus directory (DESIGN §2): forget one shard so that the next run redoes its images.

Planning is by content (:mod:`caption_gen.captioning.plan`): the images of a shard without a done marker
are simply not covered, so removing a (corrupted) shard's marker and files is all a redo needs. The
marker goes first — from then on the shard is not done, whatever else a kill leaves behind (orphan
files are removed by the next finalize).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.errors import CorpusError, NotACorpusError
from caption_gen.corpus.lock import CorpusLock

_SHARD_FILE = re.compile(r"^(?:captions|rejects)-(\d+)(?:\.r\d+)?\.parquet$")


def _shard_files(path: Path, shard: int) -> set[str]:
    out = set()
    for d in (mf.SHARDS_DIR, mf.REJECTS_DIR):
        for p in (path / d).glob("*.parquet"):
            m = _SHARD_FILE.match(p.name)
            if m and int(m.group(1)) == shard:
                out.add(f"{d}/{p.name}")
    return out


def forget_shard(root: str | Path, shard: int) -> list[str]:
    """Remove shard ``shard``'s done marker and its files (under the writer lock); returns what was removed."""
    path = Path(str(root).removeprefix("file://")).expanduser().absolute()
    if not (path / mf.DONE_DIR).is_dir():
        raise NotACorpusError(f"{root}: not a corpus (no {mf.DONE_DIR}/)")
    marker = path / mf.marker_name(shard)
    files: set[str] = set()
    with CorpusLock(path):
        if marker.is_file():
            try:
                stats = json.loads(marker.read_text())
            except (OSError, ValueError):
                stats = {}
            if isinstance(stats, dict):
                files.update(str(stats[k]) for k in ("captions_file", "rejects_file") if stats.get(k))
        elif not _shard_files(path, shard):
            raise CorpusError(f"corpus {root}: shard {shard} does not exist")
        files.update(_shard_files(path, shard))  # every revision of the shard's files
        removed = []
        if marker.exists():
            marker.unlink()
            removed.append(mf.marker_name(shard))
        for rel in sorted(files):
            target = path / rel
            if target.is_file():
                target.unlink()
                removed.append(rel)
    return removed
