"""``pedes demo``: the main job on the embedded default (``make demo``); see :mod:`flows.demo_flow`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli import app


@app.command("demo")
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="Demo config (configs/demo.yaml).")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a field: KEY=VALUE.")] = None,
) -> None:
    """Run the demo pipeline under Prefect's ephemeral API and print what it made and where."""
    from rich.console import Console

    from flows.cli.logs import attach_run_dir
    from flows.demo_flow import load_demo_config, run_demo

    cfg = load_demo_config(config, overrides)
    out = Path(cfg.out_dir).resolve()
    log = attach_run_dir(out)  # library logs of every step: docs/logging.md
    outputs = run_demo(cfg)
    print_summary(Console(highlight=False, soft_wrap=True), outputs, out, log)


def print_summary(console: Any, outputs: dict[str, Any], out: Path, log: Path) -> None:
    """The demo's one-screen summary: styles, captioning, caption examples, the table, where things are."""
    console.print("\n[bold]PEDES Forge demo finished.[/]", markup=True)
    prompts = outputs.get("style_prompts")
    if prompts is not None:
        console.print(f"\n[bold]Style bank[/] ({len(prompts)} styles; {outputs.get('style_features')}):", markup=True)
        for p in prompts:
            console.print(f"  - {p}", markup=False)
    for name, cap in (outputs.get("captioning") or {}).items():
        console.print(f"\n[bold]{name} corpus[/]: {cap['accepted']} captions accepted, {cap['rejects']} rejected",
                      markup=True)
        for key, a in (cap.get("acceptance") or {}).items():
            rate = a["accepted"] / a["rows"] if a["rows"] else 0.0
            console.print(f"  {key:<34} {a['accepted']:>5}/{a['rows']:<5} accepted ({rate:.0%})", markup=False)
        if cap.get("rejects_by_reason"):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(cap["rejects_by_reason"].items(), key=lambda kv: -kv[1]))
            console.print(f"  rejects by reason: {reasons}", markup=False)
    for name, examples in (outputs.get("caption_examples") or {}).items():
        if examples:
            console.print(f"\n[bold]Accepted captions ({name} corpus) beside the image's attributes[/]:", markup=True)
        for ex in examples:
            console.print(f"  ({ex['kind']}, {ex['model']}) {ex['caption']}\n      truth: {ex['truth']}", markup=False)
    table = outputs.get("repro_table")
    if table and Path(table).is_file():
        console.print("")
        console.print(Path(table).read_text(), markup=False)
        best = max(((arm, s["R1"]["mean"]) for arm, s in (outputs.get("finetune") or {}).items()),
                   key=lambda kv: kv[1], default=None)
        if best is not None:
            console.print(f"Best fine-tuned model: {best[0]}, text-to-image R1 {best[1]:.1f} % "
                          f"(chance {outputs.get('chance_r1', 0):.1f} %)")
    console.print("")
    for key in ("synthetic", "style_bank", "style_inspector", "repro", "repro_table"):
        if key in outputs:
            console.print(f"  {key:<16} {outputs[key]}")
    for name, path in (outputs.get("corpora") or {}).items():
        console.print(f"  {name + ' corpus':<16} {path}")
    console.print(f"  {'summary':<16} {out / 'demo-summary.json'}")
    console.print(f"  {'log':<16} {log}")
