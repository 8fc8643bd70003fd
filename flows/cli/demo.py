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
    """The demo's one-screen summary: styles, captioning, caption examples, the reproduction's R1/mAP and
    verdicts (the full table in the paper's layout is ``repro_table``), where things are."""
    console.print("\n[bold]PEDES Forge demo finished.[/]", markup=True)
    prompts = outputs.get("style_prompts")
    if prompts is not None:
        width = max(40, console.width - 4)
        head = f"Style bank ({len(prompts)} styles; "
        features = _cut(str(outputs.get("style_features") or ""), width - len(head))
        console.print(f"\n[bold]Style bank[/]{head[len('Style bank'):]}{features}):", markup=True)
        for p in prompts:  # one line each; the full prompts are in the bank and the inspector page
            console.print(f"  - {_cut(p, width)}", markup=False)
    for name, cap in (outputs.get("captioning") or {}).items():
        console.print(f"\n[bold]{name} corpus[/]: {cap['accepted']} captions accepted, {cap['rejects']} rejected",
                      markup=True)
        for line in acceptance_lines(cap.get("acceptance") or {}):
            console.print(f"  {line}", markup=False)
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
        for line in repro_lines(outputs):
            console.print(line, markup=False)
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


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def acceptance_lines(acceptance: dict[str, dict[str, int]]) -> list[str]:
    """Accepted/rows per kind (columns) × captioner (rows) from the ``"kind|model"`` counts of a corpus."""
    kinds = list(dict.fromkeys(key.split("|", 1)[0] for key in acceptance))
    models = list(dict.fromkeys(key.split("|", 1)[-1] for key in acceptance))
    cell = max([len(k) for k in kinds] + [len(f"{a['accepted']}/{a['rows']}") for a in acceptance.values()]) + 2
    name = max([len(m) for m in models] + [len("accepted")]) + 2
    lines = ["accepted".ljust(name) + "".join(k.rjust(cell) for k in kinds)]
    for model in models:
        cells = [acceptance.get(f"{k}|{model}") for k in kinds]
        lines.append(model.ljust(name) + "".join((f"{a['accepted']}/{a['rows']}" if a else "—").rjust(cell)
                                                 for a in cells))
    return lines


def repro_lines(outputs: dict[str, Any]) -> list[str]:
    """The reproduction in a terminal's width: R1 and mAP per arm (direct transfer, fine-tuned) and the
    verdict on each of the papers' directions; the full table (R5/R10, std, layout of seed 002) is in
    ``repro_table``."""
    from training.repro.arms import ARMS_BY_NAME
    from training.repro.table import format_stat

    direct, finetune = outputs.get("direct") or {}, outputs.get("finetune") or {}
    arms = list(dict.fromkeys([*direct, *finetune]))
    seeds = max((s["R1"]["n"] for s in [*direct.values(), *finetune.values()]), default=0)

    def cell(stats: dict[str, Any], arm: str, metric: str) -> str:
        return format_stat(stats.get(arm, {}).get(metric))

    labels = {a: ARMS_BY_NAME[a].label if a in ARMS_BY_NAME else a for a in arms}
    w = max([len(v) for v in labels.values()] + [3]) + 2
    lines = [f"Miniature reproduction ({seeds} seed{'s' if seeds != 1 else ''}; text-to-image, %; chance R1 "
             f"{outputs.get('chance_r1', 0):.1f}):",
             "  " + "arm".ljust(w) + "".join(h.rjust(16) for h in ("direct R1", "direct mAP", "fine-tuned R1",
                                                                   "fine-tuned mAP"))]
    for arm in arms:
        lines.append("  " + labels[arm].ljust(w) + "".join(
            cell(st, arm, m).rjust(16) for st, m in ((direct, "R1"), (direct, "mAP"), (finetune, "R1"),
                                                      (finetune, "mAP"))))
    lines.append("Directions of the papers (R1, better vs worse arm):")
    for d in outputs.get("directions") or []:
        here = f"{d['better_R1']:.1f} vs {d['worse_R1']:.1f}" if "better_R1" in d else "—"
        lines.append(f"  {d['status']:<22} {here:<13} {d['claim']}")
    return lines
