"""bytespike usage ..."""

from __future__ import annotations

import typer

app = typer.Typer(help="Usage reports.", no_args_is_help=True)
