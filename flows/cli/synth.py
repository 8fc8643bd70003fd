"""``pedes synth``: render synthetic pedestrians in the CUHK-PEDES layout (``caption_gen.synth``)."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli import app


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output directory (imgs/, reid_raw.json, attributes.jsonl)."),
    identities: int = typer.Option(100, "--identities", min=1, help="Number of people."),
    images_per_identity: int = typer.Option(4, "--images-per-identity", min=1, help="Images per person."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed, same files."),
    outfits: int = typer.Option(2, "--outfits", min=1, help="Outfits per person (clothing changes across them)."),
    height: int = typer.Option(256, "--height", min=32, help="Image height in pixels."),
    width: int = typer.Option(128, "--width", min=16, help="Image width in pixels."),
    phrasing: str = typer.Option("default", "--phrasing",
                                 help="Caption sentence patterns: default, or heldout (patterns no trained captioner "
                                      "writes; the miniature world's target benchmark)."),
    first_id: int = typer.Option(0, "--first-id", min=0, help="Person id of the first identity (disjoint worlds)."),
) -> None:
    """Render synthetic pedestrians with CUHK-PEDES-format annotations (demo and test data)."""
    from rich.console import Console

    from caption_gen.synth import render_dataset

    summary = render_dataset(out, identities=identities, images_per_identity=images_per_identity, seed=seed,
                             size=(height, width), outfits_per_identity=outfits, phrasing=phrasing,
                             first_id=first_id)
    splits = ", ".join(f"{k} {v}" for k, v in summary.by_split.items())
    Console(highlight=False).print(f"wrote {summary.images} images of {summary.identities} identities to {out} ({splits})")
