"""``pedes corpus ...``: inspect, validate and import corpora."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

corpus_app = typer.Typer(help="Inspect, validate and import Parquet corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("info")
def info(
    path: Annotated[Path, typer.Argument(help="Corpus directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Show counts by kind, model, validation and reject reason.

    Rows by kind/model with validation passed/failed, distinct images, rejects by stage and reason.
    """
    from rich.console import Console
    from rich.table import Table

    from caption_gen.corpus.info import corpus_info

    data = corpus_info(path)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console = Console(highlight=False)
    state = "finalized" if data["finalized"] else "NOT finalized (no corpus.json yet)"
    console.print(
        f"[bold]{data['name']}[/] at {data['root']} — {state}, schema {data['schema_version']}\n"
        f"{data['shards']} shards, {data['rows']} caption rows, {data['images']} images, "
        f"validation passed {data['validation']['passed']} / failed {data['validation']['failed']}, "
        f"{data['rejects']} rejects; image root: {data['image_root']}"
    )
    table = Table(title="Captions by kind and model")
    for col, justify in (("kind", "left"), ("model", "left"), ("rows", "right"), ("passed", "right"), ("failed", "right")):
        table.add_column(col, justify=justify)
    for g in data["by_kind_model"]:
        table.add_row(g["kind"], g["model"], str(g["rows"]), str(g["passed"]), str(g["failed"]))
    console.print(table)
    rej = Table(title="Rejects by reason")
    for col, justify in (("stage", "left"), ("reason", "left"), ("count", "right")):
        rej.add_column(col, justify=justify)
    for r in data["rejects_by_reason"]:
        rej.add_row(r["stage"], r["reason"], str(r["count"]))
    console.print(rej)


@corpus_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="Corpus directory.")],
    images: Annotated[
        str | None, typer.Option("--images", help="Image root to check image_path against (default: the recorded one).")
    ] = None,
    hash_images: Annotated[bool, typer.Option("--hash-images", help="Also re-hash every image against image_sha256.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a corpus; exit 0 only when valid.

    Checks shard schemas, sha256 vs manifest, row-key uniqueness, done markers, orphan/temp files and
    missing images; prints every problem and exits 1 when there is any (2 when PATH is not a corpus).
    """
    from caption_gen.corpus.validate import validate_corpus
    from pedes_core.errors import CorpusInvalidError

    report = validate_corpus(path, images=images, hash_images=hash_images)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for note in report.notes:
            typer.echo(f"note: {note}")
        for problem in report.problems:
            typer.echo(f"problem: {problem}")
        checked = ", ".join(f"{v} {k}" for k, v in report.checked.items())
        if report.ok:
            typer.echo(f"corpus {report.root} is valid (checked {checked})")
    if not report.ok:
        raise CorpusInvalidError(f"corpus {report.root} is invalid: {len(report.problems)} problem(s)")


@corpus_app.command("redo-shard")
def redo_shard(
    path: Annotated[Path, typer.Argument(help="Corpus directory.")],
    shard: Annotated[int, typer.Argument(help="Index of the shard to redo (its done marker and files are removed).")],
) -> None:
    """Forget one shard (e.g. a corrupted one) so that the next captioning run redoes its images.

    Takes the writer lock, removes the shard's done marker first (the shard is then not done), then its
    caption and reject files; rerun ``pedes caption`` / the build-corpus flow with the same settings."""
    from caption_gen.corpus.maintenance import forget_shard

    removed = forget_shard(path, shard)
    typer.echo(f"shard {shard} of {path} removed ({', '.join(removed) or 'nothing left to remove'}); "
               "rerun the captioning with the same settings to redo its images")
