"""``pedes caption``: caption an image folder into a Parquet corpus (DESIGN §2–§3; README "Command line")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app


@app.command("caption")
def caption(
    images: Annotated[str | None, typer.Option("--images", help="Image folder, list file or glob (local or fsspec URL).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Corpus folder to write (resumes: done shards are skipped).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model folder or hub name (one model; use --config for several).")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="vllm | openai | transformers | stub.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="OpenAI-compatible endpoint (backend openai).")] = None,
    kinds: Annotated[str | None, typer.Option("--kinds", help="Comma-separated: static,dynamic,identity,clothing.")] = None,
    shard_size: Annotated[int | None, typer.Option("--shard-size", help="Images per shard.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Requests per backend call.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run config YAML (several models, sampling, validation).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config field: KEY=VALUE (e.g. retry.max_attempts=2).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Do not draw the progress bar.")] = False,
) -> None:
    """Caption images with one or more MLLMs into a validated, resumable Parquet corpus."""
    from rich.console import Console

    from caption_gen.captioning.config import load_caption_config, model_flag_spec
    from caption_gen.captioning.engine import CaptionEngine
    from caption_gen.captioning.progress import CaptionProgress
    from pedes_core.configuration import save_resolved

    flags: dict = {
        "images": images,
        "out": str(out.absolute()) if out is not None else None,
        "kinds": kinds,
        "shard_size": shard_size,
        "batch_size": batch_size,
    }
    spec = model_flag_spec(model, backend, api_base)
    if spec is not None:
        flags["models"] = [spec]
    if no_progress:
        flags["progress"] = False
    cfg = load_caption_config(str(config) if config is not None else None, flags=flags, overrides=overrides)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    engine = CaptionEngine(cfg)
    engine.prepare()  # every config / model / template problem surfaces here, before generation
    with CaptionProgress(enabled=cfg.progress, console=console) as bar:
        engine.progress = bar.update

        def on_plan(plan, done):  # type: ignore[no-untyped-def]
            bar.set_total(plan.total_images, plan.covered)

        def on_locked() -> None:
            # next to the corpus folder (the corpus validator allows no extra files in its root); only
            # once this run holds the corpus lock, so a refused run leaves the running run's copy alone
            save_resolved(cfg, cfg.out.parent, name=f"{cfg.out.name}.config.resolved.yaml")

        summary = engine.run(on_plan=on_plan, on_locked=on_locked)
    console.print(
        f"corpus {summary.corpus}: {summary.shards_written} shard(s) written, {summary.shards_skipped} already done; "
        f"{summary.images} images, {summary.accepted} captions accepted, {summary.rejected} rejected "
        f"({summary.images_per_s:.1f} images/s)"
    )
