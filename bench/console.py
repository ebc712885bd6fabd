"""Console pages over 100,000 calls: each page's server time, p50 and p95, and its size.

    .venv/bin/python bench/console.py [--calls 100000] [--requests 200]
                                      [--databases sqlite,postgres] [--postgres URL]
                                      [--out bench/console_results.md]

Fills a throw-away database (as bench/databases.py makes them) with a small company (ada,
an individual who owns the org Dosia AI; bob, an enterprise admin of it; root, an operator;
20 keys) and `--calls` usage records over the last 30 UTC days (bulk inserts, then the
daily rollups they make, grouped as the settlement's upsert groups them). Then it starts a
real `bytespike serve`, signs in through the login form, and requests every console page
`--requests` times one after the other (after 10 unmeasured), timing each from the request
to the last byte of the answer on loopback. The target is 20 ms at p50 and 100 KB of HTML.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from databases import DEFAULT_POSTGRES_SERVER, PostgresDatabase, SqliteDatabase

from bytespike.accounts import service as accounts
from bytespike.billing import service as billing
from bytespike.console import credentials
from bytespike.context import Context
from bytespike.db import migrate
from bytespike.keys import service as keys
from bytespike.orgs import service as orgs
from bytespike.settings import Settings
from bytespike.usage.tables import usage_records

HERE = Path(__file__).resolve().parent
BYTESPIKE = str(Path(sys.executable).with_name("bytespike"))
PASSWORD = "correct horse battery staple"  # noqa: S105 -- a throw-away database's
TARGET_MS = 20.0
TARGET_BYTES = 100_000
MODELS = ("claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "mock")
USER_PAGES = [
    "/console/",
    "/console/keys",
    "/console/keys/1",
    "/console/usage",
    "/console/account/notifications",
    "/console/org",
]
ADMIN_PAGES = [
    "/console/admin/",
    "/console/admin/users",
    "/console/admin/orgs",
    "/console/admin/wallets?user=ada",
    "/console/admin/keys",
    "/console/admin/ledger?user=ada",
    "/console/admin/audit",
    "/console/admin/models",
]


async def seed(url: str, calls: int) -> None:
    settings = Settings(database_url=url, secret_key="bench", redis_url=None)  # noqa: S106
    ctx = Context.build(settings)
    try:
        for name, tier in (("ada", "individual"), ("bob", "enterprise"), ("root", "individual")):
            await accounts.create_user(ctx, username=name, email=f"{name}@dosia.ai", tier=tier)
            await credentials.set_password(ctx, name, PASSWORD)
        await credentials.set_operator(ctx, "root", operator=True)
        await orgs.create(ctx, name="Dosia AI")
        await orgs.add_member(ctx, org="Dosia AI", username="ada", role="owner")
        await orgs.add_member(ctx, org="Dosia AI", username="bob", role="admin")
        await billing.top_up(ctx, amount=1_000_000_000, username="ada")
        await billing.top_up(ctx, amount=1_000_000_000, org="Dosia AI")
        for i in range(20):
            owner = "ada" if i % 2 == 0 else "bob"
            await keys.create(
                ctx, username=owner, org="Dosia AI" if owner == "bob" else None, name=f"key-{i}"
            )
        async with ctx.db.read() as conn:
            ada_wallet = await billing.owner_wallet(conn, username="ada")
            org_wallet = await billing.owner_wallet(conn, org="Dosia AI")
        await _calls(ctx, calls, {1: ada_wallet, 2: org_wallet})
    finally:
        await ctx.db.close()


async def _calls(ctx: Context, calls: int, wallets: dict[int, int]) -> None:
    now = datetime.now(UTC)
    rows = []
    for n in range(calls):
        key_id = 1 + n % 20
        rows.append(
            {
                "wallet_id": wallets[1] if key_id % 2 == 1 else wallets[2],
                "key_id": key_id,
                "hold_id": None,
                "model": MODELS[n % 4],
                "provider": "mock",
                "input_tokens": 100 + n % 900,
                "output_tokens": 50 + n % 300,
                "cached_tokens": 0,
                "cost_micros": 1_000 + n % 5_000,
                "status": "ok",
                "http_status": 200,
                "stream": n % 3 == 0,
                "latency_ms": 200 + n % 700,
                "created_at": now - timedelta(seconds=(calls - n) * 30 * 86400 // calls),
            }
        )
    async with ctx.db.write() as conn:
        for start in range(0, len(rows), 5_000):
            await conn.execute(sa.insert(usage_records), rows[start : start + 5_000])
        day = (
            "(created_at AT TIME ZONE 'UTC')::date"
            if conn.dialect.name == "postgresql"
            else "substr(created_at, 1, 10)"
        )
        # As migration 0006 rolls up existing calls; `day` is one of the two constants above.
        rollup = """
            INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                                     output_tokens, cached_tokens, cost_micros, last_at)
            SELECT {day}, wallet_id, key_id, model, count(*), sum(input_tokens),
                   sum(output_tokens), sum(cached_tokens), sum(cost_micros), max(created_at)
            FROM usage_records GROUP BY {day}, wallet_id, key_id, model
        """
        await conn.execute(sa.text(rollup.replace("{day}", day)))


def sign_in(client: httpx.Client, who: str) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form[:500]
    answer = client.post(
        "/console/login", data={"csrf_token": token.group(1), "username": who, "password": PASSWORD}
    )
    assert answer.status_code == 303, answer.text[:500]


def measure(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    for _ in range(10):
        client.get(path)
    times = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        size = len(answer.content)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


def serve(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYTESPIKE_")}
    env |= {"BYTESPIKE_DATABASE_URL": url, "BYTESPIKE_SECRET_KEY": "bench"}
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 -- our own venv's bytespike script
        [BYTESPIKE, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"bytespike serve did not start: see {workdir / 'serve.log'}")


def run(
    database: str, args: argparse.Namespace, workdir: Path
) -> list[tuple[str, str, float, float, int]]:
    db = (
        SqliteDatabase(workdir)
        if database == "sqlite"
        else PostgresDatabase(args.postgres, "_console")
    )
    try:
        migrate.upgrade(db.url)
        started = time.perf_counter()
        asyncio.run(seed(db.url, args.calls))
        print(
            f"{database}: {args.calls:,} calls seeded in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        proc, base = serve(db.url, workdir)
        results = []
        try:
            for who, pages in (("ada", USER_PAGES), ("root", ADMIN_PAGES)):
                with httpx.Client(base_url=base, timeout=30) as client:
                    sign_in(client, who)
                    for path in pages:
                        p50, p95, size = measure(client, path, args.requests)
                        results.append((database, path, p50, p95, size))
                        print(
                            f"{database} {path}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {size:,} B",
                            file=sys.stderr,
                        )
        finally:
            proc.terminate()
            proc.wait(10)
        return results
    finally:
        db.drop()


def report(results: list[tuple[str, str, float, float, int]], args: argparse.Namespace) -> str:
    lines = [
        f"# Console pages over {args.calls:,} calls",
        "",
        f"Written by `bench/console.py` on {datetime.now(UTC):%Y-%m-%d}: {args.requests} "
        "requests per page one after the other, to a `bytespike serve` on loopback, timed "
        f"to the last byte. Targets: p50 ≤ {TARGET_MS:.0f} ms and HTML < 100 KB.",
        "",
        "| database | page | p50 ms | p95 ms | size | within target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for database, path, p50, p95, size in results:
        ok = "yes" if p50 <= TARGET_MS and size < TARGET_BYTES else "**no**"
        lines.append(
            f"| {database} | `{path}` | {p50:.1f} | {p95:.1f} | {size / 1000:.1f} KB | {ok} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES_SERVER)
    parser.add_argument("--out", default=str(HERE / "console_results.md"))
    args = parser.parse_args()
    results = []
    for database in args.databases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            results += run(database, args, Path(tmp))
    text = report(results, args)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(text)


if __name__ == "__main__":
    main()
