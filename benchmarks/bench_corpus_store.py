"""Corpus store throughput: rows/s written and read back, vs plain pyarrow.parquet in the same run.

    .venv/bin/python benchmarks/bench_corpus_store.py [--rows 1000000] [--shard-rows 100000] [--repeats 2]

Synthetic long-format caption rows (4 rows per image: 2 kinds x 2 models, unique ~40-word captions
drawn from a pedestrian vocabulary with a Zipf-like frequency). Pinned to one core (CPU affinity +
pyarrow CPU/IO pools of 1 thread).

* store write  = ``CorpusWriter.write_shard`` for every shard (schema conformance, null checks,
  in-shard row-key uniqueness, stats, zstd Parquet to temp + rename, sha256, done marker) +
  ``finalize`` (cross-shard uniqueness over all rows, manifest, dataset card);
* baseline write = one ``pq.write_table`` of the same table (zstd, and the default snappy);
* store read = ``Corpus.open(root).captions()`` (all columns, all done shards, explicit schema);
* baseline read = ``pq.read_table`` of the baseline file.

Best of ``--repeats`` runs for each figure (the machine may be shared). Target: >= 100k rows/s each way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.schema import CAPTION_SCHEMA
from caption_gen.corpus.writer import CorpusWriter

WORDS_PER_CAPTION = 40
ROWS_PER_IMAGE = 4
TARGET_ROWS_PER_S = 100_000
VOCAB = (
    "a the man woman person young old adult he she is wearing wears with and in on of carrying holding "
    "walking standing short long sleeve sleeves shirt t-shirt jacket coat hoodie sweater vest dress skirt "
    "jeans pants trousers shorts leggings shoes sneakers boots sandals heels black white red blue green yellow "
    "gray grey brown pink purple orange dark light navy striped plaid checked patterned plain backpack bag "
    "handbag shoulder purse umbrella phone hat cap glasses sunglasses mask hair ponytail bun curly straight "
    "bald slim thin heavy tall medium build left right hand side street sidewalk camera towards away from "
    "looks appears seems his her their black-haired blonde brunette collar hood zipper logo print belt watch "
    "socks knee-length ankle loose tight fitted casual formal sporty bright pale faded denim leather cotton"
).split()


def pin_one_core() -> str:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    return f"cpu {cpus[0]} (pyarrow threads: {pa.cpu_count()}, io {pa.io_thread_count()})"


def synthetic_table(n_rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n_images = -(-n_rows // ROWS_PER_IMAGE)
    shas = [rng.bytes(32).hex() for _ in range(n_images)]
    image_sha = pa.array(shas).take(pa.array(np.arange(n_rows) // ROWS_PER_IMAGE))
    image_id = pc.utf8_slice_codeunits(image_sha, 0, 20)
    slot = np.arange(n_rows) % ROWS_PER_IMAGE
    kind = pa.array(np.where(slot < 2, "static", "dynamic"))
    model = pa.array(np.where(slot % 2 == 0, "qwen2-vl-7b", "llava-1.6-13b"))
    template = pa.array(
        [None if s < 2 else f"tde-{t:03d}" for s, t in zip(slot, rng.integers(0, 46, n_rows), strict=True)], pa.string()
    )
    ranks = np.arange(1, len(VOCAB) + 1)
    probs = (1.0 / ranks) / (1.0 / ranks).sum()
    vocab = pa.array(VOCAB)
    cols = [vocab.take(pa.array(rng.choice(len(VOCAB), n_rows, p=probs))) for _ in range(WORDS_PER_CAPTION)]
    caption = pc.binary_join_element_wise(*cols, " ")
    idx = np.arange(n_rows) // ROWS_PER_IMAGE
    path = pc.binary_join_element_wise(
        pa.array((idx % 5000).astype(str)), pa.array(idx.astype(str)), pa.array(np.full(n_rows, "jpg")), "/"
    )
    passed = rng.random(n_rows) > 0.05
    validation = pa.StructArray.from_arrays(
        [
            pa.array(passed),
            pa.array([[] if p else ["too_short"] for p in passed], pa.list_(pa.string())),
            pa.array([["clothing", "shoes", "hair"]] * n_rows, pa.list_(pa.string())),
            pa.array(rng.random(n_rows).astype(np.float32)),
        ],
        fields=list(CAPTION_SCHEMA.field("validation").type),
    )
    sampling = pa.StructArray.from_arrays(
        [
            pa.array(np.full(n_rows, 0.7, np.float32)),
            pa.array(np.full(n_rows, 0.9, np.float32)),
            pa.array(np.full(n_rows, 120, np.int32)),
            pa.array(rng.integers(0, 2**31, n_rows)),
        ],
        fields=list(CAPTION_SCHEMA.field("sampling").type),
    )
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    data = {
        "image_id": image_id,
        "image_path": path,
        "image_sha256": image_sha,
        "width": pa.array(rng.integers(48, 400, n_rows).astype(np.int32)),
        "height": pa.array(rng.integers(128, 800, n_rows).astype(np.int32)),
        "person_id": pa.array(idx // 8),
        "split": pa.array(np.full(n_rows, "train")),
        "kind": kind,
        "model": model,
        "template_id": template,
        "style_id": pa.nulls(n_rows, pa.string()),
        "instruction_id": pa.array(np.where(slot < 2, "static-v1", "dynamic-v1")),
        "instruction_sha256": pa.array(np.full(n_rows, "ab" * 32)),
        "caption": caption,
        "num_tokens": pa.array(np.full(n_rows, 52, np.int32)),
        "finish_reason": pa.array(np.full(n_rows, "stop")),
        "sampling": sampling,
        "validation": validation,
        "attempt": pa.array(np.ones(n_rows, np.int32)),
        "created_at": pa.array(np.full(n_rows, int(now.timestamp() * 1e6)), pa.timestamp("us", tz="UTC")),
    }
    return pa.Table.from_arrays([data[f.name] for f in CAPTION_SCHEMA], schema=CAPTION_SCHEMA)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--dict-rows", type=int, default=100_000, help="rows for the caption_row() dict path figure")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    where = pin_one_core()
    work = Path(tempfile.mkdtemp(prefix="bench_corpus_", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        table = synthetic_table(args.rows)
        words = pc.mean(pc.utf8_length(pc.utf8_split_whitespace(table.column("caption")).combine_chunks().flatten()))
        print(f"pinned to {where}; built {table.num_rows} rows ({table.nbytes / 1e6:.0f} MB in memory, "
              f"{WORDS_PER_CAPTION} words/caption, mean word length {words.as_py():.1f}) in {time.perf_counter() - t0:.1f}s")
        n = table.num_rows
        base_zstd = work / "baseline_zstd.parquet"
        base_snappy = work / "baseline_snappy.parquet"
        t_base_w = best_of(args.repeats, lambda: pq.write_table(table, base_zstd, compression="zstd"))
        t_base_w_snappy = best_of(args.repeats, lambda: pq.write_table(table, base_snappy))

        def store_write() -> None:
            root = work / "corpus"
            shutil.rmtree(root, ignore_errors=True)
            with CorpusWriter(root) as w:
                for s, start in enumerate(range(0, n, args.shard_rows)):
                    w.write_shard(s, table.slice(start, args.shard_rows))
                w.finalize(name="bench")

        t_store_w = best_of(args.repeats, store_write)
        t_base_r = best_of(args.repeats, lambda: pq.read_table(base_zstd))
        corpus = Corpus.open(work / "corpus")
        assert corpus.captions().num_rows == n
        t_store_r = best_of(args.repeats, lambda: corpus.captions())
        t_groups = best_of(1, lambda: Corpus.open(work / "corpus").captions_by_image(columns=["caption"]))

        dict_rows = table.slice(0, args.dict_rows).to_pylist()
        t_dicts = best_of(1, lambda: [caption_row(**r) for r in dict_rows])

        def dict_write() -> None:
            root = work / "dicts"
            shutil.rmtree(root, ignore_errors=True)
            with CorpusWriter(root) as w:
                w.write_shard(0, dict_rows)

        t_dict_w = best_of(args.repeats, dict_write)
        size_store = sum(p.stat().st_size for p in (work / "corpus/shards").glob("*.parquet"))

        def line(label: str, seconds: float, rows: int, base: float | None = None) -> None:
            ratio = f"  ratio vs baseline {seconds / base:.2f}x time" if base else ""
            print(f"{label:<52} {seconds:8.2f} s  {rows / seconds:>12,.0f} rows/s{ratio}")

        print(f"rows: {n}, shards: {-(-n // args.shard_rows)} x {args.shard_rows}; store files "
              f"{size_store / 1e6:.0f} MB, baseline zstd {base_zstd.stat().st_size / 1e6:.0f} MB, "
              f"snappy {base_snappy.stat().st_size / 1e6:.0f} MB")
        line("baseline pq.write_table (zstd)", t_base_w, n)
        line("baseline pq.write_table (default snappy)", t_base_w_snappy, n)
        line("store write (write_shard x N + finalize)", t_store_w, n, t_base_w)
        line("baseline pq.read_table (zstd file)", t_base_r, n)
        line("store read (Corpus.captions, all columns)", t_store_r, n, t_base_r)
        line("store captions_by_image (caption column)", t_groups, n)
        line(f"caption_row() dicts ({args.dict_rows} rows)", t_dicts, args.dict_rows)
        line(f"store write from dicts ({args.dict_rows} rows, 1 shard)", t_dict_w, args.dict_rows)
        for label, t in (("write", t_store_w), ("read", t_store_r)):
            verdict = "meets" if n / t >= TARGET_ROWS_PER_S else "MISSES"
            print(f"{label}: {n / t:,.0f} rows/s {verdict} the target of {TARGET_ROWS_PER_S:,} rows/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
