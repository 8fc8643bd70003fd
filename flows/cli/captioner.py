"""``pedes captioner train``: train (or reuse) the small VLM captioner (Qwen2-VL; ``--set arch=llava``) on synthetic pedestrians
(:func:`caption_gen.captioner.train_captioner`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

captioner_app = typer.Typer(help="A small VLM captioner trained on synthetic pedestrians (served by vLLM).",
                            no_args_is_help=True)
app.add_typer(captioner_app, name="captioner")


@captioner_app.command("train")
def train(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (save_pretrained layout; vLLM loads it).")],
    synthetic: Annotated[Path | None, typer.Option(
        "--synthetic", help="A 'pedes synth' folder (its train split is used). Default: render people with the "
                            "captioner's reserved seed (10000 + --seed).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Joint training steps (after the vision stage: --set vision_steps=N).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of weights, sampling and default data.")] = None,
    noise: Annotated[float | None, typer.Option("--noise", min=0.0, max=1.0,
                                                help="Share of target attribute values replaced by wrong ones.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML CaptionerConfig (flags win over it).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE override (repeatable).")] = None,
) -> None:
    """Train a captioner (cached by a hash of config + data: a rerun reuses it) and print its folder."""
    from rich.console import Console

    from caption_gen.captioner import CaptionerConfig, train_captioner
    from pedes_core.configuration import load_config

    flags = {"out": str(out.absolute()), "synthetic": str(synthetic.absolute()) if synthetic else None,
             "steps": steps, "seed": seed, "noise": noise}
    cfg = load_config(CaptionerConfig, config, overrides or [], flags=flags)  # explicit flags win over the file
    console = Console(highlight=False, soft_wrap=True)
    from flows.cli.progress import task_progress

    with task_progress() as start:
        bar: dict[str, Callable[[int], None]] = {}

        def on_step(step: int, total: int) -> None:
            if "advance" not in bar:
                bar["advance"] = start("captioner training", total)
            bar["advance"](1)

        path = train_captioner(cfg, log=lambda m: console.print(m, markup=False), progress=on_step)
    console.print(f"captioner: {path}", markup=False)
