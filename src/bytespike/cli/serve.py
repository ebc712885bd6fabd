"""bytespike serve"""

from __future__ import annotations

import typer

from bytespike.cli.runner import load_settings


def serve(
    host: str | None = typer.Option(None, help="Bind address (default BYTESPIKE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default BYTESPIKE_PORT, 8080)."),
) -> None:
    """Run the gateway. On the embedded SQLite default, pending migrations are applied first."""
    # Imported here so the admin commands do not pay for the web stack on every run.
    import uvicorn

    from bytespike import logs
    from bytespike.app import create_app
    from bytespike.db import migrate
    from bytespike.webhooks.signing import SecretBox, SecretKeyMissing

    settings = load_settings()
    logs.configure(settings.log_level)
    try:
        SecretBox.from_settings(settings)
    except SecretKeyMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if settings.is_sqlite:
        migrate.upgrade(settings.database_url)
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
