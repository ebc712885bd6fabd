"""What bench/pg_floor.py and bench/pg_runs.py share: a throw-away PostgreSQL database
provisioned as the bench's, its one key and wallet, and one bench call's hold request."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import gateway
from databases import PostgresDatabase
from revisions import INSTALLED

from bytespike.billing.metering import HoldRequest, Outcome
from bytespike.catalog import Model

OUTCOME = Outcome(status="ok", http_status=200, stream=False, latency_ms=1, provider="bench")


@contextmanager
def throwaway(server: str, prefix: str) -> Iterator[tuple[str, Path]]:
    """A migrated, provisioned database on `server`, dropped afterwards: (its URL, the
    catalog). Nothing is called upstream: the catalog's entries point at a closed port."""
    db = PostgresDatabase(server)
    try:
        directory = Path(tempfile.mkdtemp(prefix=prefix))
        upstream = "http://127.0.0.1:9"
        catalog_path = gateway.write_catalog(directory, upstream, INSTALLED.shipped_catalog)
        gateway.provision(gateway.environment(db.url, catalog_path, 9, upstream))
        yield db.url, catalog_path
    finally:
        db.drop()


async def the_account(raw: Any) -> tuple[int, int]:
    """The provisioned key's id and its wallet's."""
    key_id, wallet_id = await raw.fetchrow(
        "SELECT api_keys.id, wallets.id FROM api_keys JOIN wallets"
        " ON wallets.user_id = api_keys.user_id"
    )
    return key_id, wallet_id


def hold_request(model: Model, key_id: int, wallet_id: int, now: datetime) -> HoldRequest:
    """A bench call's hold: 40 input tokens at the most, 16 output tokens."""
    return HoldRequest(
        key_id=key_id,
        wallet_id=wallet_id,
        model=model,
        quota_reset=None,
        capped=False,
        input_tokens=40,
        max_tokens=16,
        now=now,
        ttl=timedelta(minutes=10),
    )
