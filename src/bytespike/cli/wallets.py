"""bytespike wallets ..."""

from __future__ import annotations

import typer

app = typer.Typer(help="Show wallets.", no_args_is_help=True)
