"""`bytespike serve --workers 2` seen from its logs and its port: the environment its tests
start it with, which worker answered each call (each worker's access lines carry its pid),
and calls spread over both (each on a new connection)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.processes import clean_env
from tests.services import REDIS_URL, require

WORKERS = 2
CHAT = "/v1/chat/completions"
BODY = {"model": "mock", "max_tokens": 200, "messages": [{"role": "user", "content": "ping"}]}
LOG = "serve-0.log"


def worker_env(db_url: str, *, redis: bool = False, **settings: str) -> dict[str, str]:
    env = clean_env(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_SECRET_KEY="test-secret-key",
        BYTESPIKE_LOG_LEVEL="INFO",  # the access lines say which worker answered
        **settings,
    )
    if redis:
        require(REDIS_URL, 6379, "Redis")
        # Redis counts per key id, and every run restarts the ids: a namespace of its own.
        env |= {"BYTESPIKE_REDIS_URL": REDIS_URL, "BYTESPIKE_REDIS_PREFIX": uuid.uuid4().hex}
    return env


def log_lines(logs: Path) -> list[dict[str, Any]]:
    lines = (logs / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def all_workers_up(logs: Path, seconds: float = 30) -> None:
    """/healthz answers once one worker is up; the test needs both."""
    deadline = time.monotonic() + seconds
    while sum(r["msg"] == "Application startup complete." for r in log_lines(logs)) < WORKERS:
        assert time.monotonic() < deadline, (logs / LOG).read_text()
        await asyncio.sleep(0.1)


def answered_by(logs: Path, since: int = 0) -> Counter[tuple[int, int]]:
    """(worker pid, status) of each chat call in the access log from line `since` on."""
    return Counter(
        (r["worker"], r["status"])
        for r in log_lines(logs)[since:]
        if r.get("msg") == "request" and r.get("path") == CHAT
    )


async def all_logged(logs: Path, calls: int, seconds: float = 10) -> None:
    """Wait until the access log holds `calls` chat calls. A worker writes a call's line
    after its answer has gone (bytespike/logs.py), so a client can hold every answer while
    the last lines are still on their way: read before them, they would count as the next
    step's."""
    deadline = time.monotonic() + seconds
    while sum(answered_by(logs).values()) < calls:
        assert time.monotonic() < deadline, (logs / LOG).read_text()[-2000:]
        await asyncio.sleep(0.05)


async def fire(base: str, key: str, calls: int) -> list[httpx.Response]:
    """`calls` chat calls, 16 at a time, each on a new connection: the kernel hands new
    connections to either worker."""
    fresh = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=fresh) as client:
        return await asyncio.gather(
            *(client.post(CHAT, json=BODY, headers=headers) for _ in range(calls))
        )
