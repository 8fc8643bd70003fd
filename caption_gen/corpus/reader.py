"""Reading a corpus: pyarrow tables / pandas frames over the *done* shards, captions grouped per image.

A corpus that was written but not finalized yet (done markers, no ``corpus.json``) can be opened
too: its manifest is rebuilt in memory from the markers and ``finalized`` is False.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from caption_gen.corpus import manifest as mf
from caption_gen.corpus.errors import NotACorpusError
from caption_gen.corpus.schema import CAPTION_SCHEMA, REJECT_SCHEMA, ROW_KEY


def _local_root(root: str | Path) -> Path:
    text = str(root)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser().absolute()


class Corpus:
    """A corpus directory opened for reading. Use :meth:`open`."""

    def __init__(self, root: Path, manifest: dict[str, Any], markers: dict[int, dict[str, Any]], finalized: bool):
        self.root = root
        self.manifest = manifest
        self.markers = markers
        self.finalized = finalized

    @classmethod
    def open(cls, root: str | Path) -> Corpus:
        """Open ``root``; :class:`NotACorpusError` (exit 2) when it holds no corpus."""
        path = _local_root(root)
        if not path.is_dir():
            raise NotACorpusError(f"{root}: not a corpus (no such directory)")
        has_manifest = (path / mf.MANIFEST_NAME).is_file()
        if not has_manifest and not (path / mf.DONE_DIR).is_dir():
            raise NotACorpusError(f"{root}: not a corpus (no {mf.MANIFEST_NAME} and no {mf.DONE_DIR}/)")
        try:
            markers = mf.read_markers(path)
        except ValueError as exc:
            raise NotACorpusError(f"{root}: {exc}") from exc
        if has_manifest:
            try:
                manifest = json.loads((path / mf.MANIFEST_NAME).read_text())
            except (OSError, ValueError) as exc:
                raise NotACorpusError(f"{root}: {mf.MANIFEST_NAME} is not valid JSON ({exc})") from exc
            if not isinstance(manifest, dict) or manifest.get("format") != mf.CORPUS_FORMAT:
                raise NotACorpusError(f"{root}: {mf.MANIFEST_NAME} is not a {mf.CORPUS_FORMAT} manifest")
        else:
            manifest = mf.build_manifest(markers, name=path.name, image_root=None)
        return cls(path, manifest, markers, has_manifest)

    # -- files -------------------------------------------------------------------------------
    def shard_paths(self) -> list[str]:
        """Absolute paths of the caption files of done shards, in shard order."""
        return [str(self.root / s["captions_file"]) for _, s in sorted(self.markers.items()) if s.get("captions_file")]

    def reject_paths(self) -> list[str]:
        return [str(self.root / s["rejects_file"]) for _, s in sorted(self.markers.items()) if s.get("rejects_file")]

    def image_root(self) -> str | None:
        """The image root recorded at write time (image_path is relative to it), or None."""
        return self.manifest.get("image_root")

    # -- captions ----------------------------------------------------------------------------
    def dataset(self) -> ds.Dataset:
        """A streaming ``pyarrow.dataset`` over the done shards (explicit schema)."""
        return ds.dataset(self.shard_paths(), schema=CAPTION_SCHEMA, format="parquet")

    def captions(self, columns: list[str] | None = None, filter: pc.Expression | None = None) -> pa.Table:
        return self.dataset().to_table(columns=columns, filter=filter)

    def to_pandas(self, columns: list[str] | None = None, filter: pc.Expression | None = None):
        return self.captions(columns, filter).to_pandas()

    def num_rows(self) -> int:
        return sum(int(s.get("rows", 0)) for s in self.markers.values())

    def rejects(self) -> pa.Table:
        return ds.dataset(self.reject_paths(), schema=REJECT_SCHEMA, format="parquet").to_table()

    def captions_by_image(
        self, columns: list[str] | None = None, filter: pc.Expression | None = None
    ) -> dict[str, pa.Table]:
        """image_id → that image's caption rows (ordered by the row key), image ids sorted."""
        if columns is not None and "image_id" not in columns:
            columns = ["image_id", *columns]
        table = self.captions(columns, filter)
        if table.num_rows == 0:
            return {}
        order = [(k, "ascending") for k in ROW_KEY if k in table.column_names]
        table = table.sort_by(order)
        ids = table.column("image_id").to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        return {str(ids[s]): table.slice(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)}
