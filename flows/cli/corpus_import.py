"""``pedes corpus import``: a public benchmark (annotations + images) → a Parquet corpus of human captions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.corpus import corpus_app

_FORMATS = "cuhk-pedes|icfg-pedes|rstpreid|ufine (ufine6926|ufine3c)|luperson-mllm (Ts/Td-<model>.json)"


@corpus_app.command("import")
def import_(
    format: Annotated[str, typer.Option("--format", help=f"Annotation format: {_FORMATS}.")],
    annotations: Annotated[Path, typer.Option("--annotations", help="Annotation JSON file (e.g. reid_raw.json).")],
    images: Annotated[Path, typer.Option("--images", help="Image root the annotation paths are relative to.")],
    out: Annotated[Path, typer.Option("--out", help="Corpus directory to write (resumes when it exists).")],
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="Annotation entries per shard.")] = 1000,
    name: Annotated[str | None, typer.Option("--name", help="Corpus name in corpus.json (default: the format).")] = None,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Import only this split (repeatable; default: all).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Threads decoding images.")] = 1,
    descriptions: Annotated[
        Path | None,
        typer.Option("--descriptions", help="JSON lines with identity_text/clothing_text per image "
                     "(`pedes synth`'s attributes.jsonl): adds rows of kind identity and clothing."),
    ] = None,
) -> None:
    """Turn an annotated benchmark into a corpus.

    Rows of kind human, one per caption, with the original person ids and splits.
    Malformed annotations or missing images stop before anything is written (exit 2); images that fail
    to decode become reject rows. Re-running skips the shards already done.
    """
    from pedes_core.errors import ConfigError
    from training.data.benchmarks import SPLITS, canonical_name, load_benchmark
    from training.data.import_corpus import import_benchmark

    if format.strip().lower().replace("_", "-") == "luperson-mllm":  # caption files, not a benchmark
        from flows.cli.corpus_formats import import_luperson

        if split or descriptions is not None:
            raise ConfigError("--split/--descriptions: not used by --format luperson-mllm")
        return import_luperson(annotations, images, out, shard_size=shard_size, name=name, workers=workers)
    key = canonical_name(format)
    for s in split or ():
        if s not in SPLITS:
            raise ConfigError(f"--split {s!r}: expected one of {', '.join(SPLITS)}")
    benchmark = load_benchmark(key, annotations, images)

    from flows.cli.progress import shard_progress

    entries = sum(len(benchmark.records(s)) for s in (split or SPLITS))
    with shard_progress("import", total=-(-entries // shard_size)) as report:  # a bar, not a line per shard
        result = import_benchmark(
            benchmark, out, shard_size=shard_size, name=name, splits=split or None, workers=workers, on_shard=report,
            descriptions=descriptions,
        )
    if result.duplicates:
        typer.echo(f"warning: {annotations}: {result.duplicates} exact duplicate annotation "
                   f"entr{'y' if result.duplicates == 1 else 'ies'} skipped (the first of each was imported)", err=True)
    typer.echo(
        f"imported {benchmark.spec.title} into {result.out}: {result.rows} caption rows, {result.rejects} rejects, "
        f"{result.shards_written} shards written, {result.shards_skipped} skipped"
    )
