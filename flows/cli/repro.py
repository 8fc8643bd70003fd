"""``pedes repro``: the miniature LUPerson-MLLM reproduction (:mod:`flows.repro_flow`, DESIGN.md §8)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

#: the recipes shipped with the package (``pedes recipes``): full and quick profiles
FULL_CONFIG = "repro.yaml"
QUICK_CONFIG = "repro_quick.yaml"


@app.command("repro")
def repro(
    out: Annotated[Path, typer.Option("--out", help="Output folder (table.md, results.json, r1.png, runs).")],
    quick: Annotated[bool, typer.Option("--quick", help="Small world, one seed (minutes; the demo runs it).")] = False,
    seeds: Annotated[int | None, typer.Option("--seeds", min=1, help="Seeds per arm (mean ± std).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c",
                                                help="Repro config (default: the packaged repro.yaml, "
                                                     "or repro_quick.yaml with --quick).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a field: KEY=VALUE.")] = None,
) -> None:
    """Reproduce the papers' ablations (MLLM pretraining, TDE, NAM; BDAM under clothes change) on CPU."""
    import os

    from rich.console import Console

    from flows.cli.logs import attach_run_dir
    from training.repro.config import load_repro_config

    if config is None:
        config = Path(__file__).resolve().parent.parent / "recipes" / (QUICK_CONFIG if quick else FULL_CONFIG)
    extra = [f"out={out.resolve()}"] + ([f"seeds={seeds}"] if seeds is not None else [])
    cfg = load_repro_config(config, [*(overrides or []), *extra])
    out_dir = Path(cfg.out).resolve()
    log = attach_run_dir(out_dir)
    os.environ.setdefault("PREFECT_HOME", str(out_dir / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from flows.repro_flow import repro_flow

    config_file = out_dir / "repro.config.yaml"
    out_dir.mkdir(parents=True, exist_ok=True)
    from pedes_core.configuration import config_to_yaml

    config_file.write_text(config_to_yaml(cfg), encoding="utf-8")
    payload = repro_flow(config=str(config_file), overrides=[])
    console = Console(highlight=False, soft_wrap=True)
    console.print((out_dir / "table.md").read_text())
    console.print(f"table {out_dir / 'table.md'} · results {out_dir / 'results.json'} · plot {out_dir / 'r1.png'}"
                  f" · log {log}")
    held = [d for d in payload["directions"] if d["status"].startswith("holds")]
    console.print(f"{len(held)} of {len(payload['directions'])} directions hold here.")
