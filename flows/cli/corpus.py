"""``pedes corpus ...``: inspect, validate and import corpora."""

import typer

from flows.cli import app

corpus_app = typer.Typer(help="Inspect, validate and import Parquet corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
