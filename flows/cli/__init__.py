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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pedes-forge")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without an install
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pedes-forge {_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="Show library logs (vLLM, Prefect, transformers, open_clip) in the terminal; "
                                     "-vv also debug logs. Default: they go to the run's log file."),
) -> None:
    """PEDES Forge: build MLLM caption corpora of pedestrian images and train/evaluate text-to-image ReID."""
    from flows.cli.logs import setup_logging

    setup_logging(verbose)


def _register() -> None:
    # Each module registers its commands on ``app`` at import time. One line per command group.
    from flows.cli import (  # noqa: F401  # noqa: F401
        caption,  # noqa: F401
        captioner,  # noqa: F401
        corpus,
        corpus_formats,  # noqa: F401
        corpus_import,  # noqa: F401
        demo,
        evaluate,
        export,  # noqa: F401
        flow,  # noqa: F401
        recipes,  # noqa: F401
        repro,  # noqa: F401
        styles,  # noqa: F401
        synth,
        templates,  # noqa: F401
        train,
    )


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
