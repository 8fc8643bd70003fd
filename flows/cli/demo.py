"""``pedes demo``: the main job on the embedded default (``make demo``); see :mod:`flows.demo_flow`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app


@app.command("demo")
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="Demo config (configs/demo.yaml).")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a field: KEY=VALUE.")] = None,
) -> None:
    """Run the demo pipeline under Prefect's ephemeral API and print where each output is."""
    from rich.console import Console

    from flows.cli.logs import attach_run_dir
    from flows.demo_flow import load_demo_config, run_demo

    cfg = load_demo_config(config, overrides)
    log = attach_run_dir(Path(cfg.out_dir).resolve())  # library logs of every step: docs/logging.md
    outputs = run_demo(cfg)
    console = Console(highlight=False, soft_wrap=True)
    console.print("\n[bold]PEDES Forge demo finished.[/] Outputs:", markup=True)
    for key, value in outputs.items():
        if isinstance(value, str):
            console.print(f"  {key:<18} {value}")
    for name in ("tables",):
        for path in outputs.get(name, []):
            console.print(f"  {'table':<18} {path}")
    vlm = outputs.get("vlm_captions")
    if vlm is not None:
        console.print(f"  VLM captions: {vlm['accepted']} accepted, {vlm['rejects']} rejected "
                      f"{vlm['rejects_by_reason']} — the demo VLM has random weights unless caption.model is set")
    for label, t2i in outputs.get("finetune_test", {}).items():
        console.print(f"  fine-tuned on {label}: t2i R1 {t2i['R1']:.2f}  mAP {t2i['mAP']:.2f}")
    console.print(f"  {'summary':<18} {Path(cfg.out_dir).resolve() / 'demo-summary.json'}")
    console.print(f"  {'log':<18} {log}")
