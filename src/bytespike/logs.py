"""Structured logs: one JSON object per line on stderr. Secrets never enter a record, at any
level: keys are logged by id, headers and bodies not at all, SQL parameters (a key's hash,
its prefix) neither by SQLAlchemy (`hide_parameters`, db/engine.py) nor by the drivers."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike import request_ids, traces

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

# Libraries that print what passes through them below some level: held at that level
# whatever the rest logs at, since what they print can be a key's hash or prefix.
_FLOORS = {
    # DEBUG: every statement it runs, with its parameters, and what the operation returned.
    "aiosqlite": logging.INFO,
    # INFO: every statement, and its parameters unless the engine hides them (ours do).
    "sqlalchemy.engine": logging.WARNING,
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_ids.current()
        if request_id is not None:  # every line a request logs carries its id
            entry["request_id"] = request_id
        trace_id = traces.current_id()
        if trace_id is not None:  # and its trace's, when tracing is on
            entry["trace_id"] = trace_id
        # uvicorn adds an ANSI-coloured copy of its message; it is noise in a JSON line.
        entry.update(
            (k, v)
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("color_")
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in _FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))


access_log = logging.getLogger("bytespike.access")


class AccessLog:
    """ASGI middleware: method, path, status, latency and key id of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked per request (the level can change at run time); when access lines are
        # off, skip the wrapping too: on the model APIs it is measurable.
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log_access(scope, status, started)


def log_access(scope: Scope, status: int, started: float) -> None:
    """The access line of a request answered `status`, begun at `started` (perf_counter)."""
    access_log.info(
        "request",
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "key_id": scope.get("state", {}).get("key_id"),
        },
    )
