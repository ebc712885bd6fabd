"""Statement parameters never reach an exception's text, which is what a log line carries:
one can be a key's hash or prefix. On every engine: reads, writes and group commit."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.keys import tokens

FAILING = sa.text("SELECT missing_column FROM api_keys WHERE key_hash = :key_hash")


def _secret() -> str:
    return tokens.mint().hash


async def test_a_failed_read_does_not_show_its_parameters(ctx: Context) -> None:
    secret = _secret()
    with pytest.raises(sa.exc.DBAPIError) as failed:
        async with ctx.db.read() as conn:
            await conn.execute(FAILING, {"key_hash": secret})
    assert "missing_column" in str(failed.value)  # the statement is there, its values not
    assert secret not in str(failed.value)


async def test_a_failed_write_does_not_show_its_parameters(ctx: Context) -> None:
    secret = _secret()
    with pytest.raises(sa.exc.DBAPIError) as failed:
        async with ctx.db.write() as conn:
            await conn.execute(FAILING, {"key_hash": secret})
    assert secret not in str(failed.value)


async def test_a_failed_group_commit_does_not_show_its_parameters(ctx: Context) -> None:
    secret = _secret()
    writes = GroupCommit(ctx.db)

    async def op(conn: Any) -> None:
        await conn.execute(FAILING, {"key_hash": secret})

    try:
        with pytest.raises(sa.exc.DBAPIError) as failed:
            await writes.run(op)
    finally:
        await writes.close()
    assert secret not in str(failed.value)
