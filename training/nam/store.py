"""Per-caption token-noise store for NAM (seed 002 §3.2, "Discussion").

``r`` computed for a caption during epoch e is used to mask it during epoch e+1 (one forward pass
per step); in the first epoch nothing is stored yet and every token uses ``p``.

Layout (under ``<run_dir>/nam_store/``), float16 ``[num_captions, context_length]`` noise rows plus
a uint8 ``seen`` flag per caption, both ``numpy.memmap`` files (created sparse, so a 4M × 77 store
costs 616 MB of address space and only the pages written on disk):

* double buffer: the *read* buffer holds epoch e−1 (``epochNNNNN.noise.f16``/``.seen.u8``), the
  *write* buffer receives epoch e. A caption not seen in epoch e−1 reads as "unknown" → EM (p).
* DDP: each rank writes only its own shard for the current epoch
  (``epochNNNNN.rankKKK.noise.f16``), so ranks never write the same file. At epoch end all ranks
  flush and meet at a barrier; rank 0 merges the shards in row blocks (a caption seen by several
  ranks, e.g. a padded DistributedSampler, takes the highest rank's row), writes the merged
  epoch file and deletes the shards and the older epoch; a second barrier releases the ranks,
  which then map the merged file read-only. Requires the run directory on a filesystem shared by
  the ranks (as the checkpoints are); ``torch.distributed`` gives rank and world size.
* Checkpoints: :meth:`state` returns the read buffer's seen rows and the union of all ranks'
  current shards (read from disk, no collective, so the engine may call it on rank 0 only; rows a
  faster rank already wrote for the next step are rewritten identically when resuming);
  :meth:`load_state` rebuilds both buffers in private files of this rank.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

STORE_DIRNAME = "nam_store"
MERGE_BLOCK_ROWS = 65536


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
    noise: np.memmap
    seen: np.memmap
    paths: tuple[Path, Path]

    def flush(self) -> None:
        self.noise.flush()
        self.seen.flush()


class NoiseStore:
    """Double-buffered, memory-mapped ``r`` store; see the module docstring for the layout."""

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

    # --- files ------------------------------------------------------------------------------
    def _paths(self, epoch: int, tag: str = "") -> tuple[Path, Path]:
        stem = f"epoch{epoch:05d}{tag}"
        return self.directory / f"{stem}.noise.f16", self.directory / f"{stem}.seen.u8"

    def _shard_paths(self, epoch: int, rank: int) -> tuple[Path, Path]:
        return self._paths(epoch, f".rank{rank:03d}")

    def _open(self, paths: tuple[Path, Path], mode: str) -> _Buffer:
        noise = np.memmap(
            paths[0], dtype=np.float16, mode=mode, shape=(self.num_captions, self.context_length)
        )
        seen = np.memmap(paths[1], dtype=np.uint8, mode=mode, shape=(self.num_captions,))
        return _Buffer(noise, seen, paths)

    @staticmethod
    def _remove(paths: tuple[Path, Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    # --- epochs -----------------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        """Map epoch ``epoch − 1`` for reading and this rank's shard of ``epoch`` for writing.

        Idempotent for the current epoch (e.g. after :meth:`load_state`)."""
        if self.epoch == epoch and self._write is not None:
            return
        previous = self._paths(epoch - 1)
        self._read = self._open(previous, "r") if epoch > 0 and previous[1].exists() else None
        if epoch > 0 and self._read is None:
            log.warning(
                "NAM store: no noise of epoch %d in %s; epoch %d masks with p",
                epoch - 1,
                self.directory,
                epoch,
            )
        shard = self._shard_paths(epoch, self.rank)
        self._write = self._open(shard, "r+" if shard[1].exists() else "w+")
        self.epoch = epoch

    def end_epoch(self) -> None:
        """Flush, merge the ranks' shards into the epoch file (rank 0), drop older files."""
        if self.epoch is None or self._write is None:
            return
        epoch = self.epoch
        self._write.flush()
        self._write = None
        _barrier(self.world_size)
        if self.rank == 0:
            self._merge(epoch)
        _barrier(self.world_size)
        for path in self.directory.glob(f"*.restored.rank{self.rank:03d}.*"):
            path.unlink(missing_ok=True)
        self._read = None
        self.epoch = None

    def _merge(self, epoch: int) -> None:
        target = self._paths(epoch)
        shards = [self._shard_paths(epoch, r) for r in range(self.world_size)]
        present = [s for s in shards if s[1].exists()]
        if self.world_size == 1 and present:
            os.replace(present[0][0], target[0])
            os.replace(present[0][1], target[1])
        else:
            merged = self._open(target, "w+")
            opened = [self._open(s, "r") for s in present]
            for start in range(0, self.num_captions, MERGE_BLOCK_ROWS):
                stop = min(start + MERGE_BLOCK_ROWS, self.num_captions)
                for shard in opened:
                    rows = np.nonzero(shard.seen[start:stop])[0] + start
                    if rows.size:
                        merged.noise[rows] = shard.noise[rows]
                        merged.seen[rows] = 1
            merged.flush()
            del opened
            for shard_paths in present:
                self._remove(shard_paths)
        if epoch > 0:
            self._remove(self._paths(epoch - 1))

    # --- rows -------------------------------------------------------------------------------
    def _check_ids(self, caption_ids: torch.Tensor) -> np.ndarray:
        ids = caption_ids.detach().cpu().numpy().astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_captions):
            raise ValueError(f"caption id outside 0..{self.num_captions - 1} (NAM store size = num_captions)")
        return ids

    def read(self, caption_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise of the previous epoch ``[B, L]`` (float32) and a ``[B]`` bool "was seen" flag."""
        ids = self._check_ids(caption_ids)
        if self._read is None:
            return torch.zeros(len(ids), self.context_length), torch.zeros(len(ids), dtype=torch.bool)
        noise = torch.from_numpy(np.asarray(self._read.noise[ids], dtype=np.float32))
        seen = torch.from_numpy(np.asarray(self._read.seen[ids]) > 0)
        return noise, seen

    def write(self, caption_ids: torch.Tensor, noise: torch.Tensor) -> None:
        """Store ``noise [B, L]`` for the captions of this step (later rows win on duplicates)."""
        if self._write is None:
            raise RuntimeError("NoiseStore.write before start_epoch")
        ids = self._check_ids(caption_ids)
        values = noise.detach().to("cpu", torch.float16).numpy()
        if values.shape != (len(ids), self.context_length):
            raise ValueError(f"noise shape {values.shape} != ({len(ids)}, {self.context_length})")
        self._write.noise[ids] = values
        self._write.seen[ids] = 1

    # --- checkpoint state -------------------------------------------------------------------
    @staticmethod
    def _rows(buffer: _Buffer | None) -> tuple[torch.Tensor, torch.Tensor]:
        if buffer is None:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.float16)
        rows = np.nonzero(np.asarray(buffer.seen))[0]
        return torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(np.array(buffer.noise[rows]))

    def state(self) -> dict[str, object]:
        """Tensors and ints only (checkpoint loaded with ``weights_only=True``)."""
        read_rows, read_noise = self._rows(self._read)
        write_rows = torch.zeros(0, dtype=torch.long)
        write_noise = torch.zeros(0, self.context_length, dtype=torch.float16)
        if self.epoch is not None:
            if self._write is not None:
                self._write.flush()
            parts = []
            for rank in range(self.world_size):
                paths = self._shard_paths(self.epoch, rank)
                if paths[1].exists():
                    parts.append(self._rows(self._open(paths, "r")))
            if parts:
                rows = torch.cat([p[0] for p in parts])
                noise = torch.cat([p[1].reshape(-1, self.context_length) for p in parts])
                write_rows, write_noise = rows, noise  # duplicates: later (higher rank) rows win on load
        return {
            "epoch": -1 if self.epoch is None else self.epoch,
            "num_captions": self.num_captions,
            "context_length": self.context_length,
            "read_rows": read_rows,
            "read_noise": read_noise,
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
            restored = self._open(self._paths(epoch - 1, f".restored.rank{self.rank:03d}"), "w+")
            restored.noise[read_rows] = state["read_noise"].numpy()  # type: ignore[union-attr]
            restored.seen[read_rows] = 1
            restored.flush()
            self._read = restored
        shard = self._open(self._shard_paths(epoch, self.rank), "w+")
        write_rows = state["write_rows"].numpy()  # type: ignore[union-attr]
        if len(write_rows):
            shard.noise[write_rows] = state["write_noise"].numpy()  # type: ignore[union-attr]
            shard.seen[write_rows] = 1
        self._write = shard
        self.epoch = epoch
