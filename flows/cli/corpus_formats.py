"""``pedes corpus export`` and ``pedes corpus sample``; the LUPerson-MLLM branch of ``pedes corpus import``.

Formats (docs/formats.md): ``luperson-mllm`` (``Ts-<model>.json`` / ``Td-<model>.json``, what the
MLLM4Text-ReID trainer reads) and ``cuhk-pedes`` (``reid_raw.json``, what IRRA-style trainers read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.corpus import corpus_app


def import_luperson(annotations: Path, images: Path, out: Path, *, shard_size: int, name: str | None,
                    workers: int) -> None:
    """``pedes corpus import --format luperson-mllm``: caption files (a file or a folder) → corpus."""
    from caption_gen.corpus.formats import import_luperson_mllm
    from flows.cli.progress import shard_progress

    with shard_progress("import") as report:
        result = import_luperson_mllm(annotations, images, out, shard_size=shard_size, name=name, workers=workers,
                                      on_shard=report)
    typer.echo(
        f"imported LUPerson-MLLM captions ({', '.join(result.files)}) into {result.out}: {result.rows} caption rows, "
        f"{result.rejects} rejects, {result.shards_written} shards written, {result.shards_skipped} skipped"
    )


@corpus_app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="Corpus directory.")],
    format: Annotated[str, typer.Option("--format", help="luperson-mllm (Ts/Td-<model>.json) or cuhk-pedes (reid_raw.json).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into (created).")],
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="cuhk-pedes: export only captions of this kind (repeatable).")
    ] = None,
    include_failed: Annotated[
        bool, typer.Option("--include-failed", help="Also export captions whose validation failed.")
    ] = False,
) -> None:
    """Write a corpus in a format other trainers read.

    luperson-mllm: one JSON {image path: caption} per kind (static → Ts, dynamic → Td) × model.
    cuhk-pedes: reid_raw.json, a list of {split, captions, file_path, id}. Image paths are relative to the
    corpus' image root (printed).
    """
    from caption_gen.corpus.formats import EXPORT_FORMATS, export_luperson_mllm, export_reid_raw
    from caption_gen.corpus.reader import Corpus
    from pedes_core.errors import ConfigError

    key = format.strip().lower().replace("_", "-")
    if key not in EXPORT_FORMATS:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    root = Corpus.open(path).image_root()
    if key == "cuhk-pedes":
        res = export_reid_raw(path, out, kinds=kind or None, passed_only=not include_failed)
        splits = ", ".join(f"{s} {n}" for s, n in res.by_split.items())
        typer.echo(f"wrote {res.path}: {res.entries} images ({splits}), {res.captions} captions"
                   + (f"; ids renumbered 1..N for the training split (mapping: {res.id_map})" if res.renumbered else ""))
    else:
        if kind:
            raise ConfigError("--kind: luperson-mllm exports the static and dynamic captions (one file per kind × model)")
        res = export_luperson_mllm(path, out, passed_only=not include_failed)
        for name, n in res.files.items():
            typer.echo(f"wrote {Path(out) / name}: {n} captions")
        skipped = {**({"further templates/styles of one image": res.dropped} if res.dropped else {}),
                   **({"failed validation": res.failed_validation} if res.failed_validation else {}),
                   **{f"kind {k}": v for k, v in res.other_kinds.items()}}
        if skipped:
            typer.echo("not exported: " + ", ".join(f"{n} ({why})" for why, n in skipped.items()))
    typer.echo(f"image paths are relative to {root}")


@corpus_app.command("sample")
def sample(
    path: Annotated[Path, typer.Argument(help="Corpus directory.")],
    kind: Annotated[str | None, typer.Option("--kind", help="Only captions (or rejects) of this kind.")] = None,
    rejects: Annotated[bool, typer.Option("--rejects", help="Show rejected images/captions with their reasons.")] = False,
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="How many rows to show.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="RNG seed of the random sample.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON lines.")] = False,
) -> None:
    """Show a random sample of captions (or of rejects) to read them."""
    import json

    from caption_gen.corpus.sample import sample_rows

    rows = sample_rows(path, kind=kind, rejects=rejects, n=n, seed=seed)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, default=str, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no rows" + (f" of kind {kind}" if kind else ""))
    for r in rows:
        if rejects:
            typer.echo(f"[{r['stage']}] {r['reason']}  {r['image_path']}  kind={r['kind']} model={r['model']}")
            if r.get("detail"):
                typer.echo(f"    {r['detail']}")
        else:
            extra = "".join(f" {k}={r[k]}" for k in ("template_id", "style_id", "split") if r.get(k))
            state = "passed" if r["validation"]["passed"] else "failed: " + ", ".join(r["validation"]["reasons"] or [])
            typer.echo(f"{r['image_path']}  kind={r['kind']} model={r['model']}{extra} ({state})")
        if r.get("caption"):
            typer.echo(f"    {r['caption']}")
