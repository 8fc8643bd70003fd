"""Subprocess used by test_corpus_kill_resume.py: writes synthetic shards like a caption run would.

    python corpus_kill_worker.py ROOT SHARDS IMAGES_PER_SHARD SLEEP_S [STALL_SHARD]

Skips shards already done (resume), sleeps SLEEP_S between shards, then finalizes. STALL_SHARD
injects a fault: for that shard the worker stalls (sleeps 600 s) after the Parquet files were
renamed into place but before the done marker is written, so a SIGKILL lands mid-shard.
"""

from __future__ import annotations

import sys
import time

from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.corpus.writer import CorpusWriter

KINDS = ("static", "dynamic")
MODELS = ("m-a", "m-b")
WORDS = ("a", "person", "in", "red", "blue", "jacket", "jeans", "with", "black", "backpack", "walking", "shoes")
STALL_S = 600


def shard_rows(shard: int, n_images: int) -> tuple[list[dict], list[dict]]:
    rows = []
    for i in range(n_images):
        for kind in KINDS:
            for model in MODELS:
                words = [WORDS[(shard * 7 + i * 3 + k) % len(WORDS)] for k in range(40)]
                rows.append(
                    caption_row(
                        image_id=f"{shard:04d}-{i:04d}",
                        image_path=f"imgs/{shard}/{i}.jpg",
                        image_sha256=f"{shard:04d}{i:04d}".ljust(64, "0"),
                        width=128,
                        height=256,
                        kind=kind,
                        model=model,
                        caption=" ".join(words),
                    )
                )
    rejects = [reject_row(image_path=f"imgs/{shard}/bad.jpg", stage="decode", reason="decode:truncated")]
    return rows, rejects


def main() -> None:
    root, shards, n_images, sleep_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    stall = int(sys.argv[5]) if len(sys.argv) > 5 else None
    with CorpusWriter(root, image_root="imgs") as writer:
        if stall is not None:
            original = writer._write_marker

            def stalling_marker(shard: int, stats: dict) -> None:
                if shard == stall:
                    time.sleep(STALL_S)
                original(shard, stats)

            writer._write_marker = stalling_marker
        for shard in range(shards):
            if writer.is_done(shard):
                continue
            rows, rejects = shard_rows(shard, n_images)
            writer.write_shard(shard, rows, rejects)
            time.sleep(sleep_s)
        writer.finalize(name="kill-resume")


if __name__ == "__main__":
    main()
