"""The caption corpus as a training dataset (seed 002 §3.3, DESIGN.md §5).

Index (built once, in the main process, :func:`build_corpus_index`): the accepted caption rows
(``validation.passed``, optional kind/model filters) are read from the Parquet shards, sorted by the
corpus row key and written to two uncompressed Arrow IPC files in a cache directory:

* ``captions.arrow`` — one row per caption: ``caption``, ``kind``, ``model``; the row number is the
  caption's global id (the NAM noise-store row);
* ``images.arrow`` — one row per image: ``image_id``, ``image_path``, ``first`` (first caption row),
  ``count`` (number of accepted captions).

Workers memory-map these files (``pyarrow.memory_map``), so a million-row corpus is not
materialized per worker: pages are shared by the OS page cache and only the rows a worker touches are
read. The only per-worker arrays are the split's image positions and ``first``/``count`` (16 bytes
per image, plus 16 per description kind).

Descriptions (seed 000 §3: per image an identity-only and a clothing-only text supervise BDAM):
``CorpusFilter.descriptions`` (e.g. ``("identity", "clothing")``) adds ``descriptions.arrow`` — the
accepted rows of those kinds (``require_validation`` applies, ``models`` does not: descriptions may come
from another captioner than the queries), grouped by kind and sorted by row key — and per kind the
columns ``<kind>_first`` / ``<kind>_count`` in ``images.arrow``. Description rows are attached to the
index images by ``pyarrow.compute.index_in`` on ``image_id`` (hash lookup; both sides sorted, so each
image's rows are contiguous); descriptions of images that have no query caption are not indexed.
Samples then carry ``<kind>_caption`` (``identity_caption``, ``clothing_caption``): description
``(e + i) mod n_kind`` in epoch ``e``, rotated like the query caption. Query captions still come from
``kinds`` only. Choice for an image without a description of a kind: it stays in training and its
``<kind>_caption`` is the empty string ``""`` (never a silent drop); BDAM treats a batch holding an empty
description as lacking descriptions (``missing_descriptions: error`` stops with a message naming the
key, ``skip`` drops the terms needing it for that batch). ``index.json`` records how many images lack
each kind (``CorpusIndex.missing_descriptions``; the engine logs it).

Sampling (``captions_per_epoch``; each image is its own identity, seed 002 §3.3):

* ``all`` — the dataset yields one item per (image, caption): an epoch visits every accepted caption of
  every training image once, as the paper's recipe does (30 epochs = 30 passes over every caption; the
  official MLLM4Text-ReID code builds one sample per caption, ``datasets/luperson.py``). An image with
  ``n`` captions is seen ``n`` times per epoch, each time with another caption and its own augmentation
  draw; its captions may share a batch (SDM treats them as positives through ``person_id``). Item ``k``
  maps to (split image, caption) through the cumulative caption counts of the split (8 bytes per image,
  no per-caption array).
* ``one`` — the dataset yields *images*: in epoch ``e`` image ``i`` with ``n`` captions uses caption
  ``(e + i) mod n``, so every caption (hence every kind) of an image is used once over ``n`` consecutive
  epochs. NAM then masks a caption from the ``r`` it got ``n`` epochs earlier (the store keeps each
  caption's latest ``r``), and with ``p`` during the first ``n`` epochs.

Identities (``identities``): by default each image is its own identity (``person_id`` = the image's
split position). ``identities="person_id"`` uses the corpus' ``person_id`` column instead (imported
benchmarks and synth data record it; remapped to 0..P-1, an image without one stays its own identity), so a
PK sampler can put several images of one person into a batch (BDAM's triplet loss, seed 000 Eq. 4). The
validation split keeps one identity per image.

Validation split (model selection, never test): images whose id hashes below ``val_fraction``
(capped at ``val_max_images``) are held out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image
from torch.utils.data import Dataset

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.schema import ROW_KEY
from pedes_core.errors import InputError
from training.data.transforms import seeded_apply

INDEX_VERSION = 3
CAPTIONS_FILE = "captions.arrow"
IMAGES_FILE = "images.arrow"
META_FILE = "index.json"
DESCRIPTIONS_FILE = "descriptions.arrow"


@dataclass(frozen=True)
class CorpusFilter:
    """Which caption rows are used."""

    kinds: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    require_validation: bool = True
    descriptions: tuple[str, ...] | None = None  # description kinds attached per image (module docstring)

    def expression(self) -> pc.Expression | None:
        parts: list[pc.Expression] = []
        if self.kinds is not None:
            parts.append(pc.field("kind").isin(list(self.kinds)))
        if self.models is not None:
            parts.append(pc.field("model").isin(list(self.models)))
        return self._combine(parts)

    def description_expression(self) -> pc.Expression:
        """Rows of the description kinds (validation applies, the model filter does not)."""
        expr = self._combine([pc.field("kind").isin(list(self.descriptions or ()))])
        assert expr is not None
        return expr

    def _combine(self, parts: list[pc.Expression]) -> pc.Expression | None:
        if self.require_validation:
            parts.append(pc.field("validation", "passed") == pa.scalar(True))
        if not parts:
            return None
        expr = parts[0]
        for p in parts[1:]:
            expr = expr & p
        return expr


def _index_key(corpus: Corpus, flt: CorpusFilter) -> str:
    shards = [
        {"file": s.get("captions_file"), "rows": s.get("rows"), "sha": s.get("captions_sha256") or s.get("sha256")}
        for _, s in sorted(corpus.markers.items())
    ]
    payload = json.dumps(
        {"v": INDEX_VERSION, "root": str(corpus.root), "shards": shards, "filter": flt.__dict__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _write_ipc(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=65536)
    tmp.replace(path)


def build_corpus_index(corpus: Corpus, flt: CorpusFilter, cache_dir: str | Path) -> Path:
    """Write (or reuse) the memory-mappable caption index of ``corpus`` under ``cache_dir``.

    Raises :class:`InputError` when no caption passes the filter."""
    out = Path(cache_dir) / f"corpus-index-{_index_key(corpus, flt)}"
    if (out / META_FILE).is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    columns = [*ROW_KEY, "image_path", "caption", "person_id"]
    table = corpus.captions(columns=columns, filter=flt.expression())
    if table.num_rows == 0:
        raise InputError(
            f"{corpus.root}: no caption passes the data filter "
            f"(kinds={flt.kinds}, models={flt.models}, require_validation={flt.require_validation})"
        )
    table = table.sort_by([(k, "ascending") for k in ROW_KEY])
    ids = table.column("image_id").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, len(ids)])
    images = pa.table(
        {
            "image_id": table.column("image_id").take(pa.array(starts)),
            "image_path": table.column("image_path").take(pa.array(starts)),
            "first": pa.array(starts.astype(np.int64)),
            "count": pa.array(counts.astype(np.int64)),
            # the corpus' person id of the image (-1 when null): identities for `identities: person_id`
            "person_id": pc.fill_null(table.column("person_id").take(pa.array(starts)).cast(pa.int64()), -1),
        }
    )
    missing: dict[str, int] = {}
    if flt.descriptions:
        images, missing = _attach_descriptions(corpus, flt, images, out / DESCRIPTIONS_FILE)
    _write_ipc(table.select(["caption", "kind", "model"]), out / CAPTIONS_FILE)
    _write_ipc(images, out / IMAGES_FILE)
    meta = {"version": INDEX_VERSION, "corpus": str(corpus.root), "captions": table.num_rows, "images": len(starts),
            "descriptions": list(flt.descriptions or ()), "missing_descriptions": missing}
    (out / META_FILE).write_text(json.dumps(meta))
    return out


def _attach_descriptions(corpus: Corpus, flt: CorpusFilter, images: pa.Table,
                         path: Path) -> tuple[pa.Table, dict[str, int]]:
    """Write the description rows to ``path``; add ``<kind>_first``/``<kind>_count`` columns to ``images``.

    Returns the extended images table and, per kind, how many images have no description of it."""
    assert flt.descriptions
    rows = corpus.captions(columns=[*ROW_KEY, "caption"], filter=flt.description_expression())
    image_ids = images.column("image_id").combine_chunks()
    pos = pc.index_in(rows.column("image_id"), value_set=image_ids)
    rows = rows.append_column("_pos", pos).filter(pc.is_valid(pos))  # only images with a query caption
    parts: list[pa.Table] = []
    missing: dict[str, int] = {}
    offset = 0
    for kind in flt.descriptions:
        part = rows.filter(pc.field("kind") == kind).sort_by([("_pos", "ascending")] +
                                                             [(k, "ascending") for k in ROW_KEY[1:]])
        pos_k = np.asarray(part.column("_pos").to_numpy(), dtype=np.int64)
        counts = np.bincount(pos_k, minlength=images.num_rows).astype(np.int64)
        first = offset + np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        images = images.append_column(f"{kind}_first", pa.array(first)).append_column(f"{kind}_count", pa.array(counts))
        missing[kind] = int((counts == 0).sum())
        parts.append(part.select(["caption", "kind", "model"]))
        offset += part.num_rows
    _write_ipc(pa.concat_tables(parts), path)
    return images, missing


def _map_table(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _val_mask(image_ids: pa.Array, fraction: float, cap: int) -> np.ndarray:
    """Deterministic hold-out from the image id hash (independent of corpus order)."""
    n = len(image_ids)
    if fraction <= 0 or n < 2:
        return np.zeros(n, dtype=bool)
    keys = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in image_ids.to_pylist()),
        dtype=np.uint64,
        count=n,
    )
    u = keys.astype(np.float64) / float(2**64)
    mask = u < fraction
    if mask.sum() > cap:
        mask[np.flatnonzero(mask)[np.argsort(u[mask])[cap:]]] = False
    if mask.all():
        mask[np.argmax(u)] = False
    return mask


class CorpusIndex:
    """Metadata of a built index (opened in the main process): sizes and the train/val split."""

    def __init__(self, index_dir: str | Path, *, val_fraction: float = 0.0, val_max_images: int = 1000) -> None:
        self.index_dir = Path(index_dir)
        images = _map_table(self.index_dir / IMAGES_FILE)
        self.num_images = images.num_rows
        self.num_captions = int(json.loads((self.index_dir / META_FILE).read_text())["captions"])
        val = _val_mask(images.column("image_id").combine_chunks(), val_fraction, val_max_images)
        self.val_images = np.flatnonzero(val)
        self.train_images = np.flatnonzero(~val)
        self.first = images.column("first").to_numpy()
        self.count = images.column("count").to_numpy()
        #: corpus person id per image (-1: none recorded)
        self.person_ids = images.column("person_id").to_numpy()
        meta = json.loads((self.index_dir / META_FILE).read_text())
        self.descriptions: tuple[str, ...] = tuple(meta.get("descriptions", ()))
        self.missing_descriptions: dict[str, int] = dict(meta.get("missing_descriptions", {}))
        #: kind → (first, count) per image into descriptions.arrow
        self.description_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {
            kind: (images.column(f"{kind}_first").to_numpy(), images.column(f"{kind}_count").to_numpy())
            for kind in self.descriptions
        }

    def kinds(self) -> dict[str, int]:
        """Caption counts per kind (for the log)."""
        captions = _map_table(self.index_dir / CAPTIONS_FILE)
        vc = pc.value_counts(captions.column("kind")).to_pylist()
        return {d["values"]: int(d["counts"]) for d in vc}

    def retrieval_lists(self, split: str = "val") -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
        """(query captions, query ids, gallery image paths, gallery ids) of a split: every accepted
        caption of a held-out image is a query; each image is its own identity."""
        positions = self.val_images if split == "val" else self.train_images
        captions = _map_table(self.index_dir / CAPTIONS_FILE).column("caption")
        paths = _map_table(self.index_dir / IMAGES_FILE).column("image_path")
        q_text: list[str] = []
        q_ids: list[int] = []
        for pid, img in enumerate(positions):
            first, count = int(self.first[img]), int(self.count[img])
            q_text += captions.slice(first, count).to_pylist()
            q_ids += [pid] * count
        g_paths = paths.take(pa.array(positions.astype(np.int64))).to_pylist()
        return q_text, np.asarray(q_ids), g_paths, np.arange(len(positions))


CAPTIONS_PER_EPOCH = ("all", "one")


class CorpusDataset(Dataset):
    """Training items of a corpus index: every caption (``all``) or one caption per image (``one``)
    per epoch (module docstring).

    ``person_id`` = position of the image in the split (0..N-1; :attr:`num_images` identities), or its
    remapped corpus person id with ``identities="person_id"`` (:attr:`num_identities`),
    ``caption_id`` = global caption row, ``image_index`` = global image row."""

    def __init__(
        self,
        index: CorpusIndex,
        image_root: str | Path,
        transform: Any,
        *,
        split: str = "train",
        seed: int = 0,
        captions_per_epoch: str = "one",
        identities: str = "image",
    ) -> None:
        if captions_per_epoch not in CAPTIONS_PER_EPOCH:
            raise ValueError(f"captions_per_epoch must be one of {CAPTIONS_PER_EPOCH}, got {captions_per_epoch!r}")
        if identities not in ("image", "person_id"):
            raise ValueError(f"identities must be 'image' or 'person_id', got {identities!r}")
        self.captions_per_epoch = captions_per_epoch
        self.index_dir = index.index_dir
        self.image_root = Path(image_root)
        self.transform = transform
        self.seed = seed
        self.positions = index.train_images if split == "train" else index.val_images
        self.first = index.first
        self.count = index.count
        self.description_rows = index.description_rows
        #: ``all``: exclusive end of each split image's items (cumulative caption counts of the split)
        self.item_ends = np.cumsum(self.count[self.positions]).astype(np.int64)
        #: training identity of each split image: its position (``image``) or its corpus person id remapped
        #: to 0..P-1 (``person_id``; an image without one is its own identity)
        self.identity = np.arange(len(self.positions), dtype=np.int64)
        if identities == "person_id":
            raw = np.asarray(index.person_ids[self.positions], dtype=np.int64)
            missing = raw < 0
            raw[missing] = raw.max(initial=-1) + 1 + np.arange(int(missing.sum()))
            self.identity = np.unique(raw, return_inverse=True)[1].astype(np.int64)
        self.epoch = 0
        self._captions: pa.ChunkedArray | None = None
        self._paths: pa.ChunkedArray | None = None
        self._descriptions: pa.ChunkedArray | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_images(self) -> int:
        """Training images of the split = identities (``person_id`` range)."""
        return len(self.positions)

    @property
    def num_identities(self) -> int:
        """Training identities (``person_id`` range): images, or distinct corpus person ids."""
        return int(self.identity.max()) + 1 if len(self.identity) else 0

    def item_person_ids(self) -> np.ndarray:
        """The identity of every dataset item (the PK sampler's input)."""
        if self.captions_per_epoch == "all":
            return np.repeat(self.identity, np.diff(np.r_[0, self.item_ends]))
        return self.identity.copy()

    def __len__(self) -> int:
        if self.captions_per_epoch == "all":
            return int(self.item_ends[-1]) if len(self.item_ends) else 0
        return len(self.positions)

    def locate(self, k: int, epoch: int | None = None) -> tuple[int, int]:
        """(split image position, global caption row) of item ``k`` in ``epoch``."""
        if self.captions_per_epoch == "all":
            if not 0 <= k < len(self):
                raise IndexError(f"item {k} outside 0..{len(self) - 1}")
            i = int(np.searchsorted(self.item_ends, k, side="right"))
            start = int(self.item_ends[i - 1]) if i else 0
            return i, int(self.first[int(self.positions[i])]) + (k - start)
        img = int(self.positions[k])
        e = self.epoch if epoch is None else epoch
        return k, int(self.first[img]) + (e + img) % int(self.count[img])

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each worker
        state = self.__dict__.copy()
        state["_captions"] = state["_paths"] = state["_descriptions"] = None
        return state

    def _open(self) -> None:
        self._captions = _map_table(self.index_dir / CAPTIONS_FILE).column("caption")
        self._paths = _map_table(self.index_dir / IMAGES_FILE).column("image_path")
        if self.description_rows:
            self._descriptions = _map_table(self.index_dir / DESCRIPTIONS_FILE).column("caption")

    def description(self, i: int, kind: str, epoch: int | None = None) -> str:
        """The ``kind`` description of split image ``i`` in ``epoch`` (``""`` when the image has none)."""
        if self._captions is None:
            self._open()
        assert self._descriptions is not None
        img = int(self.positions[i])
        first, count = self.description_rows[kind]
        n = int(count[img])
        if n == 0:
            return ""
        e = self.epoch if epoch is None else epoch
        return self._descriptions[int(first[img]) + (e + img) % n].as_py()

    def caption_row(self, k: int, epoch: int | None = None) -> int:
        """Global caption row used for item ``k`` in ``epoch``."""
        return self.locate(k, epoch)[1]

    def __getitem__(self, k: int) -> dict[str, Any]:
        if self._captions is None:
            self._open()
        assert self._captions is not None and self._paths is not None
        i, row = self.locate(k)
        img = int(self.positions[i])
        path = self.image_root / self._paths[img].as_py()
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read corpus image ({exc})") from None
        # augmentation draw per image (``one``) or per (image, caption) item (``all``)
        key = (self.seed, self.epoch, img) if self.captions_per_epoch == "one" else (self.seed, self.epoch, img, row)
        seed = hash(key) & 0x7FFFFFFF
        sample = {
            "image": seeded_apply(self.transform, image, seed),
            "caption": self._captions[row].as_py(),
            "person_id": int(self.identity[i]),
            "caption_id": row,
            "image_index": img,
        }
        for kind in self.description_rows:
            sample[f"{kind}_caption"] = self.description(i, kind)
        return sample
