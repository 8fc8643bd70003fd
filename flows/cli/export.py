"""``pedes export open-clip RUN --out DIR``: a trained run as an open_clip model folder (docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

export_app = typer.Typer(help="Export trained runs for other tools (open_clip).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("open-clip")
def open_clip(
    run: Annotated[Path, typer.Argument(help="Run directory (its best.pt, else final.pt) or a checkpoint .pt.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write open_clip_config.json + safetensors weights.")],
) -> None:
    """Write the CLIP dual encoder of a run as open_clip_config.json + open_clip_model.safetensors.

    Load it without PEDES Forge: open_clip.create_model_and_transforms("local-dir:DIR").
    """
    from training.export import export_open_clip

    res = export_open_clip(run, out)
    h, w = res.image_size
    typer.echo(f"exported {res.checkpoint} → {res.out} ({res.config_path.name}, {res.weights_path.name}; "
               f"input {h}×{w}, embedding {res.embed_dim})")
    typer.echo(f'load: open_clip.create_model_and_transforms("local-dir:{res.out}")')
