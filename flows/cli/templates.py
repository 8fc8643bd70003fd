"""``pedes templates ...``: check TDE template banks (seed 002 §3.1), render instructions, mine templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

templates_app = typer.Typer(help="TDE template banks and caption instructions (LUPerson-MLLM paper, §3.1).",
                            no_args_is_help=True)
app.add_typer(templates_app, name="templates")


@templates_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Template bank: project YAML/JSON bank, or plain text (one template per line).")],
    dedup_out: Annotated[Path | None, typer.Option("--dedup-out", help="Write the deduplicated bank here (.yaml, .json or .txt).")] = None,
) -> None:
    """Validate every template; print bad ones with their reason (exit 1) or a slot summary (exit 0).
    Exact duplicates are warnings: they are dropped and do not fail the check."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from caption_gen.instructions.slots import SLOT_TYPES
    from caption_gen.templates_mining import check_bank_with_duplicates, write_deduplicated_bank

    good, problems, duplicates = check_bank_with_duplicates(file)
    console = Console(highlight=False, soft_wrap=True)
    for d in duplicates:
        console.print(f"WARNING entry {d.index}: exact duplicate of entry {d.first} ({d.template_id}); dropped",
                      markup=False)
    if problems:
        for p in problems:
            console.print(f"BAD entry {p.index}: {p.reason}", markup=False)
        console.print(f"{file}: {len(problems)} bad template(s), {len(good)} good", markup=False)
        raise typer.Exit(1)
    counts = {s: 0 for s in SLOT_TYPES}
    uses = {s: 0 for s in SLOT_TYPES}
    for t in good:
        for s in t.slots:
            uses[s] += 1
        for s in set(t.slots):
            counts[s] += 1
    dup = f" ({len(duplicates)} exact duplicate(s) dropped)" if duplicates else ""
    table = Table(title=Text(f"{file}: {len(good)} templates OK{dup}"))
    table.add_column("slot")
    table.add_column("templates", justify="right")
    table.add_column("uses", justify="right")
    for slot in SLOT_TYPES:
        table.add_row(Text(f"[{slot}]"), str(counts[slot]), str(uses[slot]))
    console.print(table)
    if dedup_out is not None:
        console.print(f"wrote {write_deduplicated_bank(good, dedup_out)} ({len(good)} templates)", markup=False)


@templates_app.command("render")
def render(
    kind: Annotated[str, typer.Option("--kind", help="static | dynamic | identity | clothing.")],
    image_id: Annotated[str, typer.Option("--image-id", help="Image id the draw is keyed on.")],
    seed: Annotated[int, typer.Option("--seed", help="Run seed.")] = 0,
    templates: Annotated[Path | None, typer.Option("--templates", help="TDE template bank (default: shipped).")] = None,
    instructions: Annotated[Path | None, typer.Option("--instructions", help="Instructions YAML (default: shipped).")] = None,
    style_bank: Annotated[Path | None, typer.Option("--style-bank", help="Style bank JSON; renders a styled instruction.")] = None,
) -> None:
    """Print the instruction id, sha256, template id and text one image would get (deterministic)."""
    from caption_gen.instructions.bank import InstructionSet

    iset = InstructionSet.load(instructions, templates, style_bank)
    ins = iset.render(kind, image_id=image_id, seed=seed, styled=style_bank is not None)
    typer.echo(f"instruction_id: {ins.instruction_id}")
    typer.echo(f"sha256: {ins.sha256}")
    typer.echo(f"template_id: {ins.template_id or '-'}")
    typer.echo(f"style_id: {ins.style_id or '-'}")
    typer.echo(f"sampling: {ins.sampling}")
    typer.echo(ins.text)


# ``pedes templates mine`` lives in its own module and registers itself on ``templates_app``.
from flows.cli import templates_mine  # noqa: E402,F401
