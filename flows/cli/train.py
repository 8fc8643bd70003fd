"""``pedes train``: run a training recipe (``configs/*.yaml``); ``--smoke`` checks it end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app


@app.command("train")
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Recipe YAML (configs/pretrain_nam.yaml, ...).")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe field: KEY=VALUE (e.g. optim.lr=1e-5).")
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option("--smoke", help="Tiny model on synthetic pedestrians, a few steps, then evaluation (< 2 min on CPU)."),
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="'latest' (newest run of this recipe) or a run dir / checkpoint.")
    ] = None,
) -> None:
    """Train a model from a recipe; writes a new run directory with checkpoints and results.json."""
    from rich.console import Console

    from training.config import load_recipe

    recipe = load_recipe(config, overrides or [])
    console = Console(stderr=True, highlight=False)
    if smoke and resume:
        # the smoke run directories live under <output_dir>/smoke (run name "<name>-smoke"); the synthetic
        # data is re-rendered (same seed, same pixels), so the latest smoke run resumes like any run
        import tempfile

        from training.engine.smoke import smoke_recipe
        from training.engine.trainer import train as run_train

        with tempfile.TemporaryDirectory(prefix="pedes-smoke-") as tmp:
            result = run_train(smoke_recipe(recipe, Path(tmp)), resume=resume)
    elif smoke:
        from training.engine.smoke import run_smoke

        result = run_smoke(recipe)
    else:
        from training.engine.trainer import train as run_train

        result = run_train(recipe, resume=resume)
    if result.results:
        console.print(f"run: {result.run_dir}\nresults: {result.results_path}")
        for name, summary in result.results.get("test", {}).items():
            t2i = summary["t2i"]
            console.print(f"  {name}: R1 {t2i['R1']:.2f}  mAP {t2i['mAP']:.2f}  (t2i, {summary['num_queries']} queries)")
