"""``pedes eval``: evaluate a checkpoint on a benchmark, or run the direct-transfer / fine-tune protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Checkpoint .pt or run directory.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Benchmark name (cuhk-pedes, icfg-pedes, rstpreid, ...).")] = None,
    annotations: Annotated[Path | None, typer.Option("--annotations", help="Benchmark annotation file.")] = None,
    images: Annotated[Path | None, typer.Option("--images", help="Benchmark image directory.")] = None,
    split: Annotated[str, typer.Option("--split", help="Split to evaluate (test, or val).")] = "test",
    protocol: Annotated[
        Path | None, typer.Option("--protocol", help="Protocol YAML: write direct-transfer and fine-tune tables.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory for JSON/Markdown/PNG.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Encoding batch size.")] = 128,
    msd_order: Annotated[
        str | None,
        typer.Option("--msd-order", help="mSD order: ranked (UFineBench paper formula) or gallery (public UFineBench "
                     "calculator); default: the checkpoint recipe's eval.msd_order."),
    ] = None,
) -> None:
    """Evaluate text-to-image retrieval (R1/R5/R10, mAP, mINP, mSD) and write results."""
    from rich.console import Console

    from pedes_core.errors import ConfigError

    console = Console(highlight=False)
    if protocol is not None:
        from pedes_core.configuration import load_config
        from training.protocol import ProtocolConfig, run_protocol

        cfg = load_config(ProtocolConfig, protocol)
        if msd_order is not None:
            if msd_order not in ("ranked", "gallery"):
                raise ConfigError(f"--msd-order: expected ranked or gallery, got {msd_order!r}")
            cfg = cfg.model_copy(update={"msd_order": msd_order})
        target = out or Path(f"{protocol.stem}-results")  # the current directory, not next to the protocol file
        run_protocol(cfg, target)
        for name in ("direct_transfer.md", "finetune.md"):
            if (target / name).is_file():
                console.print((target / name).read_text())
        console.print(f"written: {target}")
        return
    missing = [n for n, v in (("--checkpoint", checkpoint), ("--dataset", dataset), ("--annotations", annotations), ("--images", images)) if v is None]
    if missing:
        raise ConfigError(f"pedes eval: missing {', '.join(missing)} (or give --protocol FILE)")
    if split not in ("test", "val"):
        raise ConfigError(f"--split: expected test or val, got {split!r}")
    if msd_order not in (None, "ranked", "gallery"):
        raise ConfigError(f"--msd-order: expected ranked or gallery, got {msd_order!r}")
    from eval.reports import plot_cmc, single_result_markdown, write_json
    from training.config import BenchmarkSourceConfig
    from training.protocol import evaluate_checkpoint

    source = BenchmarkSourceConfig(name=dataset, annotations=annotations, images=images)
    from flows.cli.progress import task_progress

    with task_progress() as start:
        results = evaluate_checkpoint(checkpoint, [source], device=device, batch_size=batch_size, split=split,
                                      msd_order=msd_order, progress=start)
    summary = results[source.display]
    target = out or Path("eval-results") / f"{dataset}-{split}"
    write_json(summary, target / "results.json")
    md = single_result_markdown(summary)
    (target / "results.md").write_text(md)
    if summary.get("cmc"):
        plot_cmc({dataset: summary["cmc"]}, target / "cmc.png")
    console.print(md)
    console.print(f"written: {target}")
