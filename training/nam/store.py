"""Per-caption token-noise store for NAM (seed 002 §3.2, "Text Encoder" and "Discussion").

The paper: a caption's noise levels ``r`` are "computed and stored in the previous training epoch"
and used to mask it in the next one (one forward pass per step); ``r'`` starts at the constant ``p``
in the first epoch. The paper's recipe visits every caption of every image in each epoch (the official
MLLM4Text-ReID code builds one sample per (image, caption)), so "the previous epoch" holds every
caption's ``r``. To stay correct when an epoch visits only part of the captions
(``data.captions_per_epoch: one``, where caption ``(e + i) mod n`` of image ``i`` is read in epoch
``e``), this store keeps **each caption's latest r together with the epoch it came from**: a caption
is masked from its most recent ``r`` of any earlier epoch, or with ``p`` (equal masking) if it was
never scored. Reading: ``r`` written during epoch ``e`` becomes visible from epoch ``e + 1`` on (never
within the epoch that computed it), so masks depend only on earlier epochs, as in the paper.

Layout (under ``<run_dir>/nam_store/``), all ``numpy.memmap`` files created sparse (a 4M × 77 store
costs 616 MB of address space and only the pages written on disk):

* ``latest.eNNNNN.noise.f16`` float16 ``[num_captions, context_length]`` and ``latest.eNNNNN.epoch.i32``
  int32 ``[num_captions]`` — the latest ``r`` of every caption after epoch ``NNNNN`` and its source
  epoch stored as ``epoch + 1`` (0 = never scored, so a fresh sparse file means "nothing stored").
  Epoch ``e`` reads the newest ``latest`` file of an epoch < ``e``.
* ``epochNNNNN.rankKKK.noise.f16`` / ``.seen.u8`` — the rows rank ``KKK`` wrote during epoch ``NNNNN``
  (each rank writes only its own shard, so ranks never write the same file).
* Epoch end: every rank flushes and drops its read mapping, all meet at a barrier; rank 0 writes
  ``latest.e<epoch>`` = its read buffer's rows + the rows of every rank's shard (a caption seen by
  several ranks, e.g. a padded sampler, takes the highest rank's row), then deletes the shards and the
  ``latest`` files older than ``epoch − 1``; a second barrier releases the ranks. Writing a new file
  (instead of updating the mapped one in place) keeps the previous file intact until the merge is
  complete, and keeping one previous generation lets a run that crashed after the merge of epoch ``e``
  but before its epoch-end checkpoint resume epoch ``e`` from the epoch-``e − 1`` checkpoint with the
  same masks (the store holds at most two generations: 2 × 616 MB of address space at 4M × 77). Requires
  the run directory on a filesystem shared by the ranks (as the checkpoints are); rank and world size
  come from ``torch.distributed``.
* Coverage: at the merge rank 0 also counts the captions of the epoch (rows of the shards) that had a
  stored ``r`` when the epoch started, i.e. were masked by NAM rather than with ``p``:
  :attr:`last_coverage` (``nam_coverage`` in ``metrics.jsonl``). Counted from the files, so it is exact
  under DDP and after a mid-epoch resume (the restored shard holds the rows written before the
  checkpoint).
* Checkpoints: :meth:`state` returns the read buffer's stored rows with their source epochs and the
  union of all ranks' current shards (read from disk, no collective, so the engine may call it on rank
  0 only; rows a faster rank already wrote for the next step are rewritten identically when resuming);
  :meth:`load_state` rebuilds both buffers in private files of this rank. A state written by the
  earlier double-buffered store (no ``read_epochs``) loads with source epoch ``epoch − 1``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

STORE_DIRNAME = "nam_store"
MERGE_BLOCK_ROWS = 65536
_LATEST_RE = re.compile(r"^latest\.e(\d{5})\.epoch\.i32$")


def dist_rank_world() -> tuple[int, int]:
    """(rank, world size) from torch.distributed when initialised, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(world_size: int) -> None:
    """Barrier across ranks when a process group exists (a store given rank/world by hand, as in
    tests simulating ranks one after another, skips it)."""
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier()


@dataclass
class _Buffer:
    """``noise`` rows plus a per-row tag: ``seen`` (uint8, shards) or source epoch + 1 (int32, latest)."""

    noise: np.memmap
    tag: np.memmap
    paths: tuple[Path, Path]

    def flush(self) -> None:
        self.noise.flush()
        self.tag.flush()


class NoiseStore:
    """Latest-``r``-per-caption, memory-mapped store; see the module docstring for the layout."""

    def __init__(
        self,
        num_captions: int,
        context_length: int,
        directory: Path | str,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if num_captions < 1 or context_length < 1:
            raise ValueError(f"NoiseStore needs positive sizes, got {num_captions} x {context_length}")
        default_rank, default_world = dist_rank_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.num_captions = num_captions
        self.context_length = context_length
        self.directory = Path(directory) / STORE_DIRNAME
        self.directory.mkdir(parents=True, exist_ok=True)
        self.epoch: int | None = None
        self._read: _Buffer | None = None
        self._write: _Buffer | None = None
        #: share of the last merged epoch's captions that were masked from a stored r (rank 0; None elsewhere)
        self.last_coverage: float | None = None
        self.last_coverage_epoch: int | None = None

    # --- files ------------------------------------------------------------------------------
    def _latest_paths(self, epoch: int, tag: str = "") -> tuple[Path, Path]:
        stem = f"latest.e{epoch:05d}{tag}"
        return self.directory / f"{stem}.noise.f16", self.directory / f"{stem}.epoch.i32"

    def _shard_paths(self, epoch: int, rank: int) -> tuple[Path, Path]:
        stem = f"epoch{epoch:05d}.rank{rank:03d}"
        return self.directory / f"{stem}.noise.f16", self.directory / f"{stem}.seen.u8"

    def _open(self, paths: tuple[Path, Path], mode: str, tag_dtype: type) -> _Buffer:
        noise = np.memmap(
            paths[0], dtype=np.float16, mode=mode, shape=(self.num_captions, self.context_length)
        )
        tag = np.memmap(paths[1], dtype=tag_dtype, mode=mode, shape=(self.num_captions,))
        return _Buffer(noise, tag, paths)

    def _open_latest(self, paths: tuple[Path, Path], mode: str) -> _Buffer:
        return self._open(paths, mode, np.int32)

    def _open_shard(self, paths: tuple[Path, Path], mode: str) -> _Buffer:
        return self._open(paths, mode, np.uint8)

    @staticmethod
    def _remove(paths: tuple[Path, Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def _latest_before(self, epoch: int) -> int | None:
        """Epoch tag of the newest canonical ``latest`` file written before ``epoch``."""
        tags = [int(m.group(1)) for p in self.directory.iterdir() if (m := _LATEST_RE.match(p.name))]
        tags = [t for t in tags if t < epoch and self._latest_paths(t)[0].exists()]
        return max(tags) if tags else None

    # --- epochs -----------------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        """Map the latest ``r`` of earlier epochs for reading and this rank's shard of ``epoch`` for
        writing. Idempotent for the current epoch (e.g. after :meth:`load_state`)."""
        if self.epoch == epoch and self._write is not None:
            return
        self._read = None
        if epoch > 0:
            source = self._latest_before(epoch)
            if source is None:
                log.warning("NAM store: no noise stored before epoch %d in %s; it masks with p", epoch, self.directory)
            else:
                self._read = self._open_latest(self._latest_paths(source), "r")
        shard = self._shard_paths(epoch, self.rank)
        self._write = self._open_shard(shard, "r+" if shard[1].exists() else "w+")
        self.epoch = epoch

    def end_epoch(self) -> None:
        """Flush, merge the ranks' shards into ``latest.e<epoch>`` (rank 0), drop older files."""
        if self.epoch is None or self._write is None:
            return
        epoch = self.epoch
        self._write.flush()
        self._write = None
        base = self._read
        self._read = None
        if self.rank != 0:
            base = None  # only rank 0 merges; drop the mapping before rank 0 replaces the file
        _barrier(self.world_size)
        if self.rank == 0:
            self._merge(epoch, base)
        base = None
        _barrier(self.world_size)
        for path in self.directory.glob(f"*.restored.rank{self.rank:03d}.*"):
            path.unlink(missing_ok=True)
        self.epoch = None

    def _merge(self, epoch: int, base: _Buffer | None) -> None:
        target = self._latest_paths(epoch)
        tmp = self._latest_paths(epoch, ".tmp")
        merged = self._open_latest(tmp, "w+")
        shards = [self._shard_paths(epoch, r) for r in range(self.world_size)]
        opened = [self._open_shard(s, "r") for s in shards if s[1].exists()]
        visited = covered = 0
        for start in range(0, self.num_captions, MERGE_BLOCK_ROWS):
            stop = min(start + MERGE_BLOCK_ROWS, self.num_captions)
            before = np.asarray(base.tag[start:stop]) if base is not None else np.zeros(stop - start, np.int32)
            kept = np.nonzero(before)[0] + start
            if kept.size:
                assert base is not None
                merged.noise[kept] = base.noise[kept]
                merged.tag[kept] = base.tag[kept]
            seen_block = np.zeros(stop - start, dtype=bool)
            for shard in opened:
                rows = np.nonzero(shard.tag[start:stop])[0]
                if rows.size:
                    seen_block[rows] = True
                    merged.noise[rows + start] = shard.noise[rows + start]
                    merged.tag[rows + start] = epoch + 1
            visited += int(seen_block.sum())
            covered += int((seen_block & (before > 0)).sum())
        merged.flush()
        del merged, opened
        for suffix_path, final_path in zip(tmp, target, strict=True):
            suffix_path.replace(final_path)
        for shard_paths in shards:
            self._remove(shard_paths)
        for path in self.directory.iterdir():  # keep the previous generation for a resume (docstring)
            m = _LATEST_RE.match(path.name)
            if m and int(m.group(1)) < epoch - 1:
                self._remove(self._latest_paths(int(m.group(1))))
        self.last_coverage = covered / visited if visited else None
        self.last_coverage_epoch = epoch

    # --- rows -------------------------------------------------------------------------------
    def _check_ids(self, caption_ids: torch.Tensor) -> np.ndarray:
        ids = caption_ids.detach().cpu().numpy().astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_captions):
            raise ValueError(f"caption id outside 0..{self.num_captions - 1} (NAM store size = num_captions)")
        return ids

    def read(self, caption_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latest stored noise ``[B, L]`` (float32, from an earlier epoch) and a ``[B]`` bool "has r" flag."""
        ids = self._check_ids(caption_ids)
        if self._read is None:
            return torch.zeros(len(ids), self.context_length), torch.zeros(len(ids), dtype=torch.bool)
        noise = torch.from_numpy(np.asarray(self._read.noise[ids], dtype=np.float32))
        seen = torch.from_numpy(np.asarray(self._read.tag[ids]) > 0)
        return noise, seen

    def source_epochs(self, caption_ids: torch.Tensor) -> torch.Tensor:
        """Epoch each caption's stored ``r`` was computed in (``[B]`` int64; −1 = never scored)."""
        ids = self._check_ids(caption_ids)
        if self._read is None:
            return torch.full((len(ids),), -1, dtype=torch.long)
        return torch.from_numpy(np.asarray(self._read.tag[ids]).astype(np.int64) - 1)

    def write(self, caption_ids: torch.Tensor, noise: torch.Tensor) -> None:
        """Store ``noise [B, L]`` for the captions of this step (later rows win on duplicates)."""
        if self._write is None:
            raise RuntimeError("NoiseStore.write before start_epoch")
        ids = self._check_ids(caption_ids)
        values = noise.detach().to("cpu", torch.float16).numpy()
        if values.shape != (len(ids), self.context_length):
            raise ValueError(f"noise shape {values.shape} != ({len(ids)}, {self.context_length})")
        self._write.noise[ids] = values
        self._write.tag[ids] = 1

    # --- checkpoint state -------------------------------------------------------------------
    @staticmethod
    def _rows(buffer: _Buffer | None, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if buffer is None:
            return (torch.zeros(0, dtype=torch.long), torch.zeros(0, length, dtype=torch.float16),
                    torch.zeros(0, dtype=torch.int32))
        rows = np.nonzero(np.asarray(buffer.tag))[0]
        return (torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(np.array(buffer.noise[rows])),
                torch.from_numpy(np.asarray(buffer.tag[rows]).astype(np.int32)))

    def state(self) -> dict[str, object]:
        """Tensors and ints only (checkpoint loaded with ``weights_only=True``).

        ``read_epochs`` holds each read row's source epoch (as stored: epoch + 1)."""
        read_rows, read_noise, read_epochs = self._rows(self._read, self.context_length)
        write_rows = torch.zeros(0, dtype=torch.long)
        write_noise = torch.zeros(0, self.context_length, dtype=torch.float16)
        if self.epoch is not None:
            if self._write is not None:
                self._write.flush()
            parts = []
            for rank in range(self.world_size):
                paths = self._shard_paths(self.epoch, rank)
                if paths[1].exists():
                    parts.append(self._rows(self._open_shard(paths, "r"), self.context_length))
            if parts:
                write_rows = torch.cat([p[0] for p in parts])  # duplicates: later (higher rank) rows win
                write_noise = torch.cat([p[1].reshape(-1, self.context_length) for p in parts])
        return {
            "epoch": -1 if self.epoch is None else self.epoch,
            "num_captions": self.num_captions,
            "context_length": self.context_length,
            "read_rows": read_rows,
            "read_noise": read_noise,
            "read_epochs": read_epochs,
            "write_rows": write_rows,
            "write_noise": write_noise,
        }

    def load_state(self, state: dict[str, object]) -> None:
        """Rebuild the buffers of :meth:`state` (private files of this rank) and enter its epoch."""
        if (state["num_captions"], state["context_length"]) != (self.num_captions, self.context_length):
            raise ValueError(
                f"NAM state is {state['num_captions']} x {state['context_length']} captions x tokens, "
                f"the store is {self.num_captions} x {self.context_length}"
            )
        epoch = int(state["epoch"])  # type: ignore[arg-type]
        self._read = self._write = None
        self.epoch = None
        if epoch < 0:
            return
        read_rows = state["read_rows"].numpy()  # type: ignore[union-attr]
        if len(read_rows):
            restored = self._open_latest(self._latest_paths(epoch - 1, f".restored.rank{self.rank:03d}"), "w+")
            restored.noise[read_rows] = state["read_noise"].numpy()  # type: ignore[union-attr]
            epochs = state.get("read_epochs")
            restored.tag[read_rows] = epochs.numpy() if epochs is not None else epoch  # type: ignore[union-attr]
            restored.flush()
            self._read = restored
        shard = self._open_shard(self._shard_paths(epoch, self.rank), "w+")
        write_rows = state["write_rows"].numpy()  # type: ignore[union-attr]
        if len(write_rows):
            shard.noise[write_rows] = state["write_noise"].numpy()  # type: ignore[union-attr]
            shard.tag[write_rows] = 1
        self._write = shard
        self.epoch = epoch
