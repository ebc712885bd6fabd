"""`bytespike db backup` on the embedded default: a backup taken while a live gateway (two
workers) answers a stream of calls restores, copied back beside its key file, to a
database whose books verify, that holds every call answered before the backup began,
whose webhook secrets still open, and that a gateway serves again. On PostgreSQL it
points to pg_dump; it never writes over the live database."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bytespike.billing import ledger
from bytespike.context import Context
from bytespike.keys import service as keys
from bytespike.settings import Settings
from bytespike.usage.tables import usage_records
from bytespike.webhooks import service as webhooks
from bytespike.webhooks.signing import SecretBox
from bytespike.webhooks.tables import webhook_endpoints
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.processes import BYTESPIKE, clean_env, serving

CHAT = "/v1/chat/completions"
CONCURRENCY = 8
LOAD_SECONDS = 120  # a deadline, not a measure: the calls needed take a second or two


def body(n: int) -> dict[str, Any]:
    return {
        "model": "mock",
        "stream": n % 2 == 0,
        "messages": [{"role": "user", "content": f"call {n}"}],
    }


async def seed(url: str) -> dict[str, Any]:
    """Two funded users with a key each, and a webhook endpoint whose secret is sealed
    under the key file the server made beside the database."""
    settings = Settings(database_url=url, webhook_allow_private=True)
    ctx = Context.build(settings)
    try:
        minted = []
        for name in ("ada", "bo"):
            await make_user(ctx, name)
            await top_up(ctx, "50", user=name)
            minted.append((await make_key(ctx, name, rate_limit=1_000_000))["key"])
        created = await webhooks.create(
            ctx,
            await keys.resolve(ctx, minted[0]),
            url="http://127.0.0.1:9/hook",
            event_types=["key.revoked"],  # nothing in this test sends it
            description=None,
        )
        wallets = [await wallet_of(ctx, user=name) for name in ("ada", "bo")]
        return {"keys": minted, "secret": created["secret"], "wallets": wallets}
    finally:
        await ctx.db.close()


class Load:
    """Calls through the gateway, CONCURRENCY at a time, until stopped; counts answers,
    and the answers that were settled before they were sent (the unstreamed ones)."""

    def __init__(self, base: str, keys: list[str]) -> None:
        self.base = base
        self.keys = keys
        self.answered = 0
        self.settled = 0
        self.stopping = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopping.set()
        await self.task

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            await asyncio.gather(*(self._caller(http, i) for i in range(CONCURRENCY)))

    async def _caller(self, http: httpx.AsyncClient, i: int) -> None:
        n = i
        while not self.stopping.is_set():
            headers = {"Authorization": f"Bearer {self.keys[n % len(self.keys)]}"}
            answer = await http.post(CHAT, json=body(n), headers=headers)
            assert answer.status_code == 200, answer.text
            self.answered += 1
            self.settled += not body(n)["stream"]
            n += CONCURRENCY

    async def until(self, count: int) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        while self.answered < count:
            if self.task.done():
                self.task.result()  # its failure, told
            assert time.monotonic() < deadline, f"{self.answered} calls in {LOAD_SECONDS}s"
            await asyncio.sleep(0.01)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        BYTESPIKE, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()
    return out.decode()


async def test_a_backup_taken_under_load_restores_to_books_that_verify(tmp_path: Path) -> None:
    live = tmp_path / "live" / "bytespike.db"
    live.parent.mkdir()
    env = clean_env(BYTESPIKE_DATABASE_URL=f"sqlite:///{live}", BYTESPIKE_LOG_LEVEL="WARNING")
    backup = tmp_path / "backups" / "bytespike-backup.db"
    backup.parent.mkdir()
    with serving(env, live.parent, workers=2) as (base,):  # migrates, makes the key file
        seeded = await seed(env["BYTESPIKE_DATABASE_URL"])
        load = Load(base, seeded["keys"])
        load.start()
        await load.until(50)
        before, settled = load.answered, load.settled
        said = await cli(env, "db", "backup", str(backup))
        during = load.answered - before
        await load.until(load.answered + 50)  # the gateway goes on serving after it
        await load.stop()
    assert during > 0, "no call was answered while the backup ran"
    assert said.splitlines() == [
        f"backed up the database to {backup} ({backup.stat().st_size} bytes)",
        f"and its key file to {backup}.key: keep the two together, and private",
    ]
    assert mode(backup) == mode(Path(f"{backup}.key")) == 0o600  # both hold secrets

    # Restore as the deployment guide says: both files back where the database lives.
    restored = tmp_path / "restored" / "bytespike.db"
    restored.parent.mkdir()
    shutil.copy(backup, restored)
    shutil.copy(f"{backup}.key", f"{restored}.key")
    url = f"sqlite:///{restored}"
    env = clean_env(BYTESPIKE_DATABASE_URL=url, BYTESPIKE_LOG_LEVEL="WARNING")
    await cli(env, "ledger", "verify")

    ctx = Context.build(Settings(database_url=url))
    try:
        async with ctx.db.read() as conn:
            rows = (await conn.execute(sa.select(sa.func.count(usage_records.c.id)))).scalar_one()
            for wallet in seeded["wallets"]:
                assert await ledger.verify(conn, wallet) == []
            sealed = (await conn.execute(sa.select(webhook_endpoints.c.secret_sealed))).scalar_one()
    finally:
        await ctx.db.close()
    assert settled <= rows < load.answered  # all that was settled before it, not what came after
    assert SecretBox.from_settings(Settings(database_url=url)).open(sealed) == seeded["secret"]

    with serving(env, restored.parent) as (base,):
        headers = {"Authorization": f"Bearer {seeded['keys'][0]}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            answer = await http.post(CHAT, json=body(1), headers=headers)
    assert answer.status_code == 200, answer.text
    await cli(env, "ledger", "verify")


def test_on_postgresql_it_points_to_pg_dump(postgres_database: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [BYTESPIKE, "db", "backup", str(tmp_path / "copy.db")],
        env=clean_env(BYTESPIKE_DATABASE_URL=postgres_database),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("error: on PostgreSQL, back up with pg_dump")
    assert not (tmp_path / "copy.db").exists()


def test_it_never_writes_over_the_live_database(tmp_path: Path) -> None:
    env = clean_env(BYTESPIKE_DATABASE_URL=f"sqlite:///{tmp_path / 'bytespike.db'}")
    subprocess.run([BYTESPIKE, "users", "list"], env=env, check=True, capture_output=True)
    for target in ("bytespike.db", "bytespike.db-wal", "./bytespike.db"):
        done = subprocess.run(
            [BYTESPIKE, "db", "backup", target],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "is the database's own file" in done.stderr
    verified = subprocess.run([BYTESPIKE, "ledger", "verify"], env=env, capture_output=True)
    assert verified.returncode == 0, verified.stderr
