"""bytespike serve"""

from __future__ import annotations

import typer

from bytespike.cli.runner import start_process


def serve(
    host: str | None = typer.Option(None, help="Bind address (default BYTESPIKE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default BYTESPIKE_PORT, 8080)."),
) -> None:
    """Run the gateway. On the embedded SQLite default, pending migrations are applied first."""
    settings = start_process()  # before the web stack: a configuration error is told at once
    # Imported here so the admin commands do not pay for the web stack on every run.
    import uvicorn

    from bytespike.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        access_log=False,  # our AccessLog middleware logs structured records instead
        log_config=None,
        server_header=False,
        loop="auto",
        http="auto",
    )
