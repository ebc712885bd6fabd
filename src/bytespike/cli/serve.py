"""bytespike serve: the gateway, as one process or as N worker processes on one port.

With `--workers N` (N > 1), uvicorn's supervisor binds the port and starts N processes
(spawned: nothing of this one is inherited but its environment); each builds the app with
`worker_app` from the settings this process has already checked, after `start_process`
has migrated the embedded default once. The workers share what replicas share: the
database (keys, their versions and org flags are read there, so a change applies in every
worker from its next request) and the rate-limit counts, through Redis when it is set,
else through a file of this process's own (ratelimit/shared.py); and their metrics, kept
in files in a directory this process makes, which a scrape of any worker sums
(metrics/families.py). Every worker runs the hold sweeper and the webhook dispatcher;
both are built for several processes at once.

SIGTERM (or Ctrl+C) stops it gracefully, with or without workers: it stops accepting
connections at once, lets the calls in flight run on for the grace period (`--grace`,
BYTESPIKE_GRACE_SECONDS), cuts the streams still running then (each settles as
`client_closed`), commits every settlement, lets the webhook outbox drain for up to the
grace period again, and exits 0 (app.py's lifespan does the part inside each worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from bytespike.cli.runner import fail, load_settings, start_process
from bytespike.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from uvicorn import Config

# Memory the kernel never writes back to a disk, where there is one; only ever the parent
# of a private directory made by mkdtemp.
_SHARED_MEMORY = Path("/dev/shm")  # noqa: S108
_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable


def serve(
    host: str | None = typer.Option(None, help="Bind address (default BYTESPIKE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default BYTESPIKE_PORT, 8080)."),
    workers: int = typer.Option(
        1, min=1, help="Worker processes on the one port; one per core is a good start."
    ),
    grace: int | None = typer.Option(
        None,
        min=0,
        help="Seconds calls in flight may run on after SIGTERM "
        "(default BYTESPIKE_GRACE_SECONDS, 30).",
    ),
) -> None:
    """Run the gateway. On the embedded SQLite default, pending migrations are applied first."""
    if grace is not None:  # the setting, for this process and the workers it starts
        os.environ["BYTESPIKE_GRACE_SECONDS"] = str(grace)
    settings = start_process()  # before the web stack: a configuration error is told at once
    # Imported here so the admin commands do not pay for the web stack on every run.
    import uvicorn

    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "access_log": False,  # our AccessLog middleware logs structured records instead
        "log_config": None,
        "server_header": False,
        "loop": "auto",
        "http": "auto",
        # Past it, uvicorn cancels the calls still running: streams settle as cut.
        "timeout_graceful_shutdown": settings.grace_seconds,
    }
    with _shared_rate_limits(settings, workers), _shared_metrics(workers), _stop_exits_cleanly():
        if workers == 1:
            from bytespike.app import create_app

            uvicorn.run(create_app(settings), **options)
            return
        config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers, **options)
        _supervise(config)


def worker_app() -> FastAPI:
    """uvicorn's factory, called in each worker process: the app, from the environment the
    supervisor checked. Log lines carry the worker's pid (`worker`), as several processes
    write to one stream. A worker that cannot build it exits as uvicorn's start-up failure,
    which stops the server: any other exit, uvicorn would answer by starting it again."""
    from uvicorn.config import STARTUP_FAILURE

    from bytespike import logs
    from bytespike.app import create_app

    try:
        settings = load_settings()
        logs.configure(settings.log_level)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_WorkerPid())
        return create_app(settings)
    except Exception:  # every cause alike: logged, then the start-up failure
        logging.getLogger(__name__).exception("worker could not start")
        raise SystemExit(STARTUP_FAILURE) from None


class _WorkerPid(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.pid = os.getpid()

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.pid
        return True


@contextlib.contextmanager
def _shared_rate_limits(settings: Settings, workers: int) -> Iterator[None]:
    """Without Redis: the configured rate-limit file, checked (a bad one is one error line),
    or for several workers one made here (in a private directory, removed when the server
    stops). One worker without either counts in its own memory."""
    path = settings.rate_limit_file
    if settings.redis_url is not None or (path is None and workers == 1):
        yield
        return
    made = None
    if path is None:
        parent = _SHARED_MEMORY if os.access(_SHARED_MEMORY, os.W_OK) else None
        made = Path(tempfile.mkdtemp(prefix="bytespike-", dir=parent))
        path = made / "ratelimit"
        os.environ["BYTESPIKE_RATE_LIMIT_FILE"] = str(path)  # the workers' environment
    try:
        _check_rate_limit_file(path)
        yield
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """For several workers, the directory their metrics are kept in, as files a scrape of
    any of them sums (prometheus_client's multiprocess mode, metrics/families.py): made
    here, private, before the workers start, and removed when the server stops. One that
    PROMETHEUS_MULTIPROC_DIR names is used as it is (made if missing, never removed)."""
    given = os.environ.get(_METRICS_DIR)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
    if given or workers == 1:
        yield
        return
    parent = _SHARED_MEMORY if os.access(_SHARED_MEMORY, os.W_OK) else None
    made = Path(tempfile.mkdtemp(prefix="bytespike-metrics-", dir=parent))
    os.environ[_METRICS_DIR] = str(made)  # the workers' environment, read before any import
    try:
        yield
    finally:
        del os.environ[_METRICS_DIR]
        shutil.rmtree(made, ignore_errors=True)


@contextlib.contextmanager
def _stop_exits_cleanly() -> Iterator[None]:
    """Once stopped by a signal, uvicorn raises it again for the handler that was there
    before its own, so that the default one kills the process: exit status 143 for a
    graceful SIGTERM, which reads as a crash. Here that handler ends the process with 0."""

    def stopped(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_rate_limit_file(path: Path) -> None:
    from bytespike.ratelimit.shared import SharedRateLimiter

    try:
        limiter = SharedRateLimiter(path)
    except (OSError, ValueError) as exc:
        fail(f"BYTESPIKE_RATE_LIMIT_FILE: {exc}")
    asyncio.run(limiter.close())


def _supervise(config: Config) -> None:
    """uvicorn's supervisor, as `uvicorn.run` drives it, but a worker that cannot start
    (uvicorn then stops the rest) is an exit code 1 here, not a clean exit."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            # The workers close their copies of the listening socket as they stop; this
            # one too, or new connections would queue on it unanswered, not be refused.
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    supervisor = Supervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        fail("a worker process failed to start; its error is logged above")
