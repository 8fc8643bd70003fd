"""``pedes templates mine``: mine TDE templates from captions (seed 002 §3.1, automated).

Adds the ``mine`` command to the ``templates`` group defined in ``flows/cli/templates.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.templates import templates_app


@templates_app.command("mine")
def mine(
    captions: Annotated[str, typer.Option("--source", "--captions", help="Text file (one caption per line), annotation JSON, Parquet, or corpus dir (as `styles build --source`; `--captions` is the old name).")],
    out: Annotated[Path, typer.Option("--out", help="Template bank to write (.json, or .txt for one template per line).")],
    max_captions: Annotated[int | None, typer.Option("--max-captions", help="Seeded random sample of at most N captions.")] = None,
    max_templates: Annotated[int | None, typer.Option("--max-templates", help="Keep at most N templates (most supported first).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Near-duplicate cosine threshold.")] = 0.92,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
) -> None:
    """Turn captions into slot templates (rule-based slotting), validate, deduplicate, write a bank."""
    from caption_gen.styles.sources import load_style_texts
    from caption_gen.templates_mining import mine_templates, write_template_bank

    src = load_style_texts(captions, max_texts=max_captions, seed=seed)
    from flows.cli.progress import task_progress

    with task_progress() as start:
        bar = start("templates mine", len(src.texts))
        seen = 0

        def on_progress(done: int, total: int) -> None:
            nonlocal seen
            bar(done - seen)
            seen = done

        result = mine_templates(src.texts, threshold=threshold, max_templates=max_templates, progress=on_progress)
    path = write_template_bank(result, out, source=src.origin)
    s = result.stats
    typer.echo(f"{s['captions']} captions → {s['valid']} valid templates ({s['rejected']} rejected, "
               f"{s.get('repaired', 0)} repaired: pronoun at the person slot / repeated slot) → "
               f"{s['after_exact']} after exact dedup → {s['written']} written to {path}")
