"""``pedes recipes list|show|path|copy``: the recipes and flow configs that ship inside the package.

They are the files of the checkout's ``configs/`` (``flows/recipes`` links to it, so the wheel carries
them as package data of ``flows``). Outputs of a run go to the current directory whichever copy is used
(``engine.output_dir`` is an output path; docs/outputs.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app

recipes_app = typer.Typer(help="Training recipes and flow configs shipped with PEDES Forge.", no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")


def recipes_root() -> Path:
    """The folder of the shipped YAML files (inside the installed package)."""
    from importlib.resources import files

    return Path(str(files("flows") / "recipes"))


def _kind(rel: str, text: str) -> str:
    if rel.startswith("flows/"):
        return "flow config"
    if rel == "deployments.yaml":
        return "deployments"
    if rel == "demo.yaml":
        return "demo"
    return "training recipe" if "\nmethod:" in "\n" + text else "config"


#: the method papers by their number in DESIGN.md's index (comments say "seed NNN"; the CLI says "paper")
PAPERS = {"000": "BDAM paper", "001": "dual-granularity paper", "002": "LUPerson-MLLM paper",
          "003": "Sew+MCM paper", "004": "UFineBench paper"}


def cite(text: str) -> str:
    """``"(seed 002 Table 4)"`` → ``"(LUPerson-MLLM paper Table 4)"``: "seed" only ever means the RNG seed."""
    import re

    return re.sub(r"\b[Ss]eed (\d{3})\b", lambda m: PAPERS.get(m.group(1), f"paper {m.group(1)}"), text)


def _description(text: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            s = s.lstrip("#").strip()
            if s and not s.startswith("`"):
                return cite(s)
        elif s:
            break
    return ""


def catalog() -> list[tuple[str, str, str, Path]]:
    """(name, kind, description, path) of every shipped YAML, sorted by kind and name."""
    root = recipes_root()
    out = []
    for p in sorted(root.rglob("*.yaml")):
        rel = p.relative_to(root).as_posix()
        text = p.read_text(encoding="utf-8")
        out.append((rel.removesuffix(".yaml"), _kind(rel, text), _description(text), p))
    order = {"training recipe": 0, "flow config": 1, "demo": 2, "deployments": 3}
    return sorted(out, key=lambda r: (order.get(r[1], 4), r[0]))


def find(name: str) -> Path:
    """The shipped file called ``name`` (``finetune_irra``, ``finetune_irra.yaml``, ``flows/train``)."""
    from pedes_core.errors import ConfigError

    key = name.removesuffix(".yaml")
    for n, _, _, p in catalog():
        if n == key:
            return p
    names = ", ".join(n for n, *_ in catalog())
    raise ConfigError(f"unknown recipe {name!r}; shipped: {names}")


@recipes_app.command("list")
def list_() -> None:
    """List the shipped recipes and configs with what each one is for."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_header=True, pad_edge=False)
    for col in ("name", "kind", "description"):
        table.add_column(col)
    for name, kind, desc, _ in catalog():
        table.add_row(name, kind, desc)
    Console(highlight=False, width=160).print(table)


@recipes_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Recipe name (see 'pedes recipes list').")]) -> None:
    """Print a recipe's YAML."""
    typer.echo(find(name).read_text(encoding="utf-8"), nl=False)


@recipes_app.command("path")
def path(name: Annotated[str, typer.Argument(help="Recipe name (see 'pedes recipes list').")]) -> None:
    """Print the recipe's file path, e.g. for `pedes train -c "$(pedes recipes path finetune_irra)"`."""
    typer.echo(str(find(name)))


@recipes_app.command("copy")
def copy(
    name: Annotated[str, typer.Argument(help="Recipe name (see 'pedes recipes list').")],
    out: Annotated[Path, typer.Option("--out", help="Folder to copy into (default: the current directory).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy a recipe next to you to edit it (its data paths are relative to the copy)."""
    from pedes_core.errors import ConfigError

    src = find(name)
    target = out / src.name
    if target.exists() and not force:
        raise ConfigError(f"{target}: exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"wrote {target}")
