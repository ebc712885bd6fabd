"""bytespike ledger ..."""

from __future__ import annotations

import typer

app = typer.Typer(help="Read and verify the ledger.", no_args_is_help=True)
