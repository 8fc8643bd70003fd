"""The memory-mapped, latest-r-per-caption, per-rank-sharded NAM store (seed 002 §3.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.nam import NoiseStore


def _rows(n: int, length: int, value: float) -> torch.Tensor:
    return torch.full((n, length), value)


def test_first_epoch_has_nothing_then_each_caption_keeps_its_latest_r(tmp_path: Path) -> None:
    store = NoiseStore(10, 6, tmp_path)
    store.start_epoch(0)
    noise, seen = store.read(torch.tensor([0, 1]))
    assert not seen.any() and torch.all(noise == 0)
    store.write(torch.tensor([1, 4]), torch.tensor([[0.1, 0.2, 0.3, 0, 0, 0], [0.5] * 6]))
    noise, seen = store.read(torch.tensor([1]))
    assert not seen.any()  # r written in epoch 0 is not visible during epoch 0
    store.end_epoch()
    store.start_epoch(1)
    noise, seen = store.read(torch.tensor([1, 4, 2]))
    assert seen.tolist() == [True, True, False]
    assert torch.allclose(noise[0], torch.tensor([0.1, 0.2, 0.3, 0, 0, 0]), atol=1e-3)  # float16
    store.write(torch.tensor([2, 4]), _rows(2, 6, 0.9))
    assert not store.read(torch.tensor([2]))[1].any()
    store.end_epoch()
    store.start_epoch(2)
    # caption 1 was not visited in epoch 1: it keeps its epoch-0 r (the double-buffered store lost it)
    noise, seen = store.read(torch.tensor([1, 2, 4, 3]))
    assert seen.tolist() == [True, True, True, False]
    assert store.source_epochs(torch.tensor([1, 2, 4, 3])).tolist() == [0, 1, 1, -1]
    assert abs(float(noise[0, 1]) - 0.2) < 1e-3 and abs(float(noise[2, 0]) - 0.9) < 1e-3  # latest r wins
    store.end_epoch()
    files = sorted(p.name for p in (tmp_path / "nam_store").iterdir())
    # shards and generations before the previous one are dropped; epoch 1's stays for a resume of epoch 2
    assert files == ["latest.e00001.epoch.i32", "latest.e00001.noise.f16",
                     "latest.e00002.epoch.i32", "latest.e00002.noise.f16"]


def test_coverage_counts_the_epochs_captions_that_had_a_stored_r(tmp_path: Path) -> None:
    store = NoiseStore(8, 3, tmp_path)
    store.start_epoch(0)
    store.write(torch.tensor([0, 1, 2, 3]), _rows(4, 3, 0.3))
    store.end_epoch()
    assert store.last_coverage == 0.0 and store.last_coverage_epoch == 0
    store.start_epoch(1)
    store.write(torch.tensor([2, 3, 4, 5]), _rows(4, 3, 0.4))  # 2, 3 were scored in epoch 0; 4, 5 never
    store.write(torch.tensor([2]), _rows(1, 3, 0.5))  # a caption visited twice counts once
    store.end_epoch()
    assert store.last_coverage == 0.5
    store.start_epoch(2)
    store.write(torch.tensor([0, 5]), _rows(2, 3, 0.6))  # 0 from epoch 0, 5 from epoch 1
    store.end_epoch()
    assert store.last_coverage == 1.0


def test_store_files_are_float16_memmaps(tmp_path: Path) -> None:
    store = NoiseStore(1000, 77, tmp_path)
    store.start_epoch(0)
    store.write(torch.tensor([999]), _rows(1, 77, 0.25))
    store.end_epoch()
    path = tmp_path / "nam_store" / "latest.e00000.noise.f16"
    assert path.stat().st_size == 1000 * 77 * 2
    assert np.memmap(path, dtype=np.float16, mode="r", shape=(1000, 77))[999, 0] == np.float16(0.25)
    tags = np.memmap(tmp_path / "nam_store" / "latest.e00000.epoch.i32", dtype=np.int32, mode="r", shape=(1000,))
    assert tags[999] == 1 and tags[:999].sum() == 0  # source epoch + 1; 0 = never scored


def test_state_round_trip_through_weights_only_checkpoint(tmp_path: Path) -> None:
    store = NoiseStore(20, 4, tmp_path / "a")
    store.start_epoch(0)
    store.write(torch.tensor([3, 7]), torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.7, 0.6]]))
    store.end_epoch()
    store.start_epoch(1)
    store.write(torch.tensor([5]), _rows(1, 4, 0.33))
    torch.save({"nam": store.state()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["nam"]

    restored = NoiseStore(20, 4, tmp_path / "b")
    restored.load_state(state)
    restored.start_epoch(1)  # no-op: already in the checkpoint's epoch
    for ids in (torch.tensor([3, 7, 5]),):
        a, sa = store.read(ids)
        b, sb = restored.read(ids)
        assert torch.equal(a, b) and torch.equal(sa, sb)
    restored.write(torch.tensor([6]), _rows(1, 4, 0.5))
    restored.end_epoch()
    restored.start_epoch(2)
    noise, seen = restored.read(torch.tensor([5, 6, 3, 0]))
    assert seen.tolist() == [True, True, True, False]  # pre-checkpoint row 5 survived; 3 keeps its epoch-0 r
    assert restored.source_epochs(torch.tensor([5, 6, 3])).tolist() == [1, 1, 0]
    assert abs(float(noise[0, 0]) - 0.33) < 1e-3


def test_state_of_the_double_buffered_store_still_loads(tmp_path: Path) -> None:
    old_state = {"epoch": 1, "num_captions": 6, "context_length": 2,
                 "read_rows": torch.tensor([2]), "read_noise": torch.full((1, 2), 0.7, dtype=torch.float16),
                 "write_rows": torch.zeros(0, dtype=torch.long), "write_noise": torch.zeros(0, 2, dtype=torch.float16)}
    store = NoiseStore(6, 2, tmp_path)
    store.load_state(old_state)
    assert store.read(torch.tensor([2, 3]))[1].tolist() == [True, False]
    assert store.source_epochs(torch.tensor([2])).tolist() == [0]  # read buffer = epoch − 1


def test_ranks_write_shards_merged_at_epoch_end(tmp_path: Path) -> None:
    rank0 = NoiseStore(12, 3, tmp_path, rank=0, world_size=2)
    rank1 = NoiseStore(12, 3, tmp_path, rank=1, world_size=2)
    for store in (rank0, rank1):
        store.start_epoch(0)
    rank0.write(torch.tensor([0, 2]), _rows(2, 3, 0.1))
    rank1.write(torch.tensor([1, 2]), _rows(2, 3, 0.7))  # caption 2 on both ranks: highest rank wins
    shards = sorted(p.name for p in (tmp_path / "nam_store").glob("*.rank*.seen.u8"))
    assert shards == ["epoch00000.rank000.seen.u8", "epoch00000.rank001.seen.u8"]
    state = rank0.state()  # rank 0 sees every rank's shard (shared run dir)
    assert sorted(set(state["write_rows"].tolist())) == [0, 1, 2]
    rank1.end_epoch()  # (with a process group both ranks meet at barriers; simulated in order here)
    rank0.end_epoch()
    assert not list((tmp_path / "nam_store").glob("*.rank*"))
    assert rank0.last_coverage == 0.0 and rank1.last_coverage is None  # rank 0 merges and counts
    for store in (rank0, rank1):
        store.start_epoch(1)
        noise, seen = store.read(torch.tensor([0, 1, 2, 3]))
        assert seen.tolist() == [True, True, True, False]
        assert torch.allclose(noise[:3, 0], torch.tensor([0.1, 0.7, 0.7]), atol=1e-3)
    rank0.write(torch.tensor([0]), _rows(1, 3, 0.2))
    rank1.write(torch.tensor([3]), _rows(1, 3, 0.2))
    rank1.end_epoch()
    rank0.end_epoch()
    assert rank0.last_coverage == 0.5  # caption 0 had an r (rank 0's shard), caption 3 not (rank 1's)
    for store in (rank0, rank1):
        store.start_epoch(2)
        assert store.read(torch.tensor([0, 1, 2, 3]))[1].all()  # every rank reads the merged latest r


def test_out_of_range_caption_id_is_an_error(tmp_path: Path) -> None:
    store = NoiseStore(5, 2, tmp_path)
    store.start_epoch(0)
    try:
        store.write(torch.tensor([5]), _rows(1, 2, 0.0))
    except ValueError as exc:
        assert "caption id" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_resuming_an_epoch_whose_merge_already_ran_reads_the_same_r(tmp_path: Path) -> None:
    """Crash after epoch 1's merge but before its epoch-end checkpoint: the resume restarts epoch 1 from
    the epoch-0 checkpoint (store state: between epochs) and must read epoch 0's r, not nothing."""
    store = NoiseStore(6, 2, tmp_path)
    store.start_epoch(0)
    store.write(torch.tensor([0, 1, 2]), _rows(3, 2, 0.4))
    store.end_epoch()
    between_epochs = store.state()  # what the epoch-0 end checkpoint holds
    store.start_epoch(1)
    expected = store.read(torch.tensor([0, 1, 2, 3]))
    store.write(torch.tensor([0, 3]), _rows(2, 2, 0.8))
    store.end_epoch()  # merged; the process dies before the next checkpoint

    resumed = NoiseStore(6, 2, tmp_path)
    resumed.load_state(between_epochs)
    resumed.start_epoch(1)
    noise, seen = resumed.read(torch.tensor([0, 1, 2, 3]))
    assert torch.equal(seen, expected[1]) and torch.equal(noise, expected[0])
    assert resumed.source_epochs(torch.tensor([0, 3])).tolist() == [0, -1]
