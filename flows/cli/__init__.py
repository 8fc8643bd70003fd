"""The ``pedes`` command line: one Typer app; each command group lives in its own module.

Wiring only: commands parse arguments, load configs and call into ``caption_gen``, ``training`` and
``eval``. Heavy libraries are imported inside the command bodies so ``pedes --help`` stays fast.
User errors (:class:`pedes_core.errors.PedesError`) are printed without a traceback and turned into
their exit status (2 for config/input problems).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.console import Console

from pedes_core.errors import PedesError

app = typer.Typer(
    name="pedes",
    help="PEDES Forge: build MLLM caption corpora of pedestrian images and train/evaluate text-to-image ReID.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _register() -> None:
    # Each module registers its commands on ``app`` at import time. One line per command group.
    from flows.cli import corpus, demo, synth  # noqa: F401
    from flows.cli import corpus_import  # noqa: F401
    from flows.cli import evaluate, train  # noqa: F401
    from flows.cli import styles  # noqa: F401
    from flows.cli import templates  # noqa: F401
    from flows.cli import flow  # noqa: F401
    from flows.cli import caption  # noqa: F401
    from flows.cli import corpus_formats  # noqa: F401
    from flows.cli import export  # noqa: F401
    from flows.cli import recipes  # noqa: F401


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``pedes``)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="pedes")
    except PedesError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
