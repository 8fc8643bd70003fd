"""``pedes styles ...``: cluster human descriptions by writing style and inspect the clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

styles_app = typer.Typer(help="Style clustering → style prompts (BDAM paper, §3.3).", no_args_is_help=True)
app.add_typer(styles_app, name="styles")


@styles_app.command("build")
def build(
    source: Annotated[str, typer.Option("--source", help="Text file (one description per line), benchmark annotation JSON, Parquet, or corpus dir.")],
    out: Annotated[Path, typer.Option("--out", help="Output styles directory.")],
    algorithm: Annotated[str | None, typer.Option("--algorithm", help="dbscan | hdbscan | kmeans-ups (default: dbscan).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (StylesConfig).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only annotation records of this split.")] = None,
    max_texts: Annotated[int | None, typer.Option("--max-texts", help="Seeded random sample of at most N texts.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = None,
) -> None:
    """Neutralize, embed, cluster and prompt; write assignments.parquet, bank.json and report.html."""
    from caption_gen.styles.build import StylesConfig, build_styles
    from pedes_core.configuration import load_config
    from pedes_core.errors import ConfigError

    defaults: dict = {"source": source}
    if split is not None:
        defaults["split"] = split
    if max_texts is not None:
        defaults["max_texts"] = max_texts
    cfg = load_config(StylesConfig, config, overrides or [], defaults=defaults)
    cfg.source = source
    if algorithm is not None:
        if algorithm not in ("dbscan", "hdbscan", "kmeans-ups"):
            raise ConfigError(f"--algorithm {algorithm!r}: choose dbscan, hdbscan or kmeans-ups")
        cfg.cluster.algorithm = algorithm
    if cfg.neutralizer == "llm" or cfg.prompter == "llm":
        raise ConfigError("styles build: the LLM neutralizer/prompter needs a backend; the CLI runs the rule-based "
                          "neutralizer and statistics prompts (use the style-clusters flow for LLM backends)")
    from flows.cli.progress import task_progress

    with task_progress() as start:
        advance = None

        def on_stage(stage: str, done: int, total: int) -> None:
            nonlocal advance
            if advance is None:
                advance = start("styles build", total)
            advance(1)

        result = build_styles(cfg, out, progress=on_stage)
    typer.echo(format_build_summary(result.summary, out))


def format_build_summary(summary: dict, out: Path | str) -> str:
    """What ``pedes styles build`` prints: features (saying when no CLIP weights were configured),
    cluster counts before and after each merge step, prompt similarity and the outputs."""
    q = summary["quality"]
    m = q.get("merge", {})
    sil = q["silhouette"]
    feats = summary.get("features", {})
    lines = [
        f"{summary['source']['texts']} texts → {q['styles']} styles ({summary['algorithm']}, silhouette "
        f"{'n/a' if sil is None else f'{sil:.3f}'})",
        f"features: {feats.get('note', feats.get('set'))}",
        f"clusters: {m.get('clusters_found', q['clusters_raw'])} found (noise {q['noise_share_before']:.1%}) → "
        f"{m.get('after_stabilization', '?')} after stabilization → {m.get('after_profile_merge', '?')} after merging "
        f"indistinct style profiles → {m.get('after_prompt_merge', q['styles'])} after merging same-saying prompts",
        f"prompts: max pairwise similarity {q.get('prompt_similarity_max', 0.0):.3f} "
        f"(bound {q.get('prompt_similarity_bound', 0.8):.2f})",
        f"wrote {out}/assignments.parquet, bank.json, report.html",
    ]
    return "\n".join(lines)


@styles_app.command("report")
def report(
    styles_dir: Annotated[Path, typer.Argument(help="A directory written by 'pedes styles build'.")],
) -> None:
    """(Re)write the self-contained inspector page STYLES_DIR/report.html."""
    from caption_gen.styles.report import write_report

    page = write_report(styles_dir)
    typer.echo(f"wrote {page}")
