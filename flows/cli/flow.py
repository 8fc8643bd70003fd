"""``pedes flow list|run``, ``pedes serve`` and ``pedes server``: run the Prefect flows (DESIGN §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

flow_app = typer.Typer(help="Prefect flows: build-corpus, style-clusters, mine-templates, train.", no_args_is_help=True)
app.add_typer(flow_app, name="flow")


@flow_app.command("list")
def list_flows(
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line (for scripts).")] = False,
) -> None:
    """List the flows: name, what it does, and the example config to start from."""
    from flows.registry import FLOWS

    if names:
        for name in FLOWS:
            typer.echo(name)
        return
    from flows.cli.recipes import recipes_root

    width = max(len(n) for n in FLOWS)
    for name, entry in FLOWS.items():
        typer.echo(f"{name:<{width}}  {entry.summary}")
        example = f"flows/{name.replace('-', '_')}.yaml"
        if (recipes_root() / example).is_file():  # shipped example config (`pedes recipes show flows/...`)
            typer.echo(f"{'':<{width}}  pedes flow run {name} -c configs/{example}")


@flow_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Flow name (see 'pedes flow list').")],
    config: Annotated[Path, typer.Option("--config", "-c", help="The flow's YAML config (configs/flows/*.yaml).")],
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the config and print the plan (build-corpus: images, shards, "
                           "requests = images × kinds × models, done vs pending); run nothing.")
    ] = False,
) -> None:
    """Run one flow locally against Prefect's ephemeral API (or PREFECT_API_URL when set)."""
    from flows.registry import configured_flow, get_flow

    entry = get_flow(name)  # unknown name → ConfigError before Prefect starts
    _, cfg = configured_flow(name, config, overrides or [])  # config errors exit 2 before Prefect starts
    if dry_run:
        for line in _plan_lines(name, cfg):
            typer.echo(line)
        return
    entry.preflight(cfg)  # e.g. build-corpus: another run holds the corpus lock → clear error, exit 1
    from flows.cli.logs import attach_run_dir
    from flows.registry import run_flow

    folder = _output_folder(cfg)
    if folder is not None:
        attach_run_dir(folder)  # Prefect / library logs of the run: docs/logging.md
    summary = run_flow(name, config, overrides or [])
    typer.echo(json.dumps(summary, indent=2, default=str))


def _plan_lines(name: str, cfg) -> list[str]:
    """What ``flow run`` would do, without Prefect (build-corpus: the captioning engine's own planner)."""
    out = _output_folder(cfg)
    lines = [f"{name}: config valid; output: {out if out is not None else '(see config)'}"]
    cap = getattr(cfg, "caption", None)
    if name != "build-corpus" or cap is None:
        return lines + ["no shard plan for this flow; it runs as configured"]
    from caption_gen.captioning.engine import CaptionEngine
    from caption_gen.corpus.manifest import read_markers

    root = Path(str(cap.out))
    markers = read_markers(root) if root.is_dir() else {}
    engine = CaptionEngine(cap)
    engine.load_instructions()
    plan = engine.plan(markers)
    jobs = [(k, m.label) for m in cap.models for k in cap.kinds]
    pending_images = sum(len(s.images) for s in plan.shards)
    requests = sum(len(s.jobs.get(ref.path, jobs)) if s.jobs else len(jobs) for s in plan.shards for ref, _ in s.images)
    lines += [
        f"images: {plan.total_images} found, {plan.covered} already in the corpus, {pending_images} to caption",
        f"shards: {len(set(markers) | {s.index for s in plan.shards})} in all, {len(markers)} done, "
        f"{len(plan.shards)} pending (shard size {cap.shard_size})",
        f"requests: {requests} = images × kinds × models ({len(cap.kinds)} kinds × {len(cap.models)} models: "
        + ", ".join(f"{k}/{m}" for k, m in jobs) + ")",
    ]
    return lines


def _output_folder(cfg) -> Path | None:
    """Where a flow config writes: ``out_dir``, ``out`` (a file's folder) or ``caption.out`` (the corpus)."""
    for owner, attr in ((cfg, "out_dir"), (cfg, "out"), (getattr(cfg, "caption", None), "out")):
        value = getattr(owner, attr, None) if owner is not None else None
        if value is not None and "://" not in str(value):
            path = Path(value)
            return path.parent if path.suffix else path
    return None


@app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="Deployments YAML (configs/deployments.yaml).")],
    check: Annotated[bool, typer.Option("--check", help="Validate the file and print the deployments, then exit.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Most concurrent flow runs in this process.")] = None,
    run_once: Annotated[bool, typer.Option("--run-once", help="Run the flow runs due now, then exit.")] = False,
    write_prefect_yaml: Annotated[
        Path | None, typer.Option("--write-prefect-yaml", help="Write prefect.yaml (work-pool deployments) generated "
                                  "from this file to PATH, then exit; config paths relative to PATH's folder.")
    ] = None,
) -> None:
    """Serve the flows as scheduled deployments (cron/interval + parameters from YAML) until interrupted."""
    from flows.serve import load_deployments, serve_deployments

    if write_prefect_yaml is not None:
        from flows.serve import prefect_yaml_text

        write_prefect_yaml.write_text(prefect_yaml_text(config, write_prefect_yaml.resolve().parent), encoding="utf-8")
        typer.echo(f"wrote {write_prefect_yaml}")
        return
    spec = load_deployments(config)
    for d in spec.deployments:
        when = f"cron {d.cron!r}" if d.cron else f"every {d.interval:g} s" if d.interval else "unscheduled"
        typer.echo(f"{d.flow}/{d.name}: {when}{' (paused)' if d.paused else ''} config={d.config}")
    if check:
        return
    if run_once:
        import asyncio

        from flows.serve import run_due_once

        asyncio.run(run_due_once(config, limit=limit))
        return
    serve_deployments(config, limit=limit)


@app.command("server")
def server(
    host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the UI/API.")] = 4200,
) -> None:
    """Start the Prefect server with its UI (``prefect server start``); set PREFECT_API_URL to use it."""
    import subprocess
    import sys

    typer.echo(f"Prefect UI at http://{host}:{port} — in other shells: "
               f"export PREFECT_API_URL=http://{host}:{port}/api")
    raise typer.Exit(subprocess.call([sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                      "--port", str(port)]))
