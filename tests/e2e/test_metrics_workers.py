"""/metrics of `bytespike serve --workers 2`, a real process, on SQLite and PostgreSQL: calls
spread over both workers, and every scrape, whichever worker answers it, counts each of
them exactly once, with the tokens and money the books hold. The directory the workers
keep their metrics in is the server's own, gone once it stops."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa

from bytespike.billing import ledger
from bytespike.usage.tables import usage_records
from tests.e2e.workers_support import (
    WORKERS,
    all_workers_up,
    answered_by,
    fire,
    log_lines,
    worker_env,
)
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.metrics_support import Scrape, requests
from tests.processes import serving

CALLS = 60
SCRAPES = 6


async def scrape(base: str) -> Scrape:
    """On a new connection: the kernel hands it to either worker."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=fresh) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return Scrape.parse(answer.text)


def metrics_dirs(logs: Path) -> set[str]:
    """PROMETHEUS_MULTIPROC_DIR as each worker process got it."""
    found = set()
    for pid in {r["worker"] for r in log_lines(logs) if "worker" in r}:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        found |= {
            v.decode()
            for k, _, v in (e.partition(b"=") for e in environ)
            if k == b"PROMETHEUS_MULTIPROC_DIR"
        }
    return found


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_every_scrape_of_two_workers_counts_each_call_once(ctx, db_url, tmp_path):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, rate_limit=100_000))["key"]
    with serving(worker_env(db_url), tmp_path, workers=WORKERS) as (base,):
        await all_workers_up(tmp_path)
        dirs = metrics_dirs(tmp_path)
        before = await scrape(base)
        answers = await fire(base, key, CALLS)
        refused = await fire(base, "sk-bs-not-a-key", 10)
        scrapes = [await scrape(base) for _ in range(SCRAPES)]
    assert {a.status_code for a in answers} == {200}
    assert {a.status_code for a in refused} == {401}
    served = answered_by(tmp_path)
    assert len({pid for pid, status in served if status == 200}) == WORKERS, served

    wallet = await wallet_of(ctx, user="ada")
    u = usage_records.c
    async with ctx.db.read() as conn:
        assert await ledger.verify(conn, wallet) == []
        spent = (await ledger.balances(conn, wallet)).spent
        tokens = sa.select(sa.func.sum(u.input_tokens), sa.func.sum(u.output_tokens))
        input_tokens, output_tokens = (await conn.execute(tokens)).one()
    assert requests(before, "mock", 200) == 0
    for each in scrapes:
        assert requests(each, "mock", 200) == CALLS
        assert requests(each, "", 401, "authentication_error") == 10
        assert each.value("bytespike_settled_tokens_total", model="mock", kind="input") == (
            input_tokens
        )
        assert each.value("bytespike_settled_tokens_total", model="mock", kind="output") == (
            output_tokens
        )
        assert each.value("bytespike_settled_microdollars_total", model="mock") == spent
        assert each.total("bytespike_upstream_latency_seconds_count") == CALLS
        assert each.value("bytespike_pending_holds") == 0

    [made] = dirs  # one directory, the same for both workers, made by the server...
    assert not exists(made)  # ...and removed when it stopped
