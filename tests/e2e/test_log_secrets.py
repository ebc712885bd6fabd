"""No key material in the logs at any level: the real `bytespike serve` at DEBUG, on SQLite
and PostgreSQL, never prints a key, its SHA-256 or its prefix, whichever library logs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from bytespike.context import Context
from tests.factories import make_key, make_user, top_up
from tests.processes import clean_env, serving

CHAT = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


async def test_debug_logs_hold_no_key_material(ctx: Context, db_url: str, tmp_path: Path) -> None:
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx)
    secret = key["key"]
    wrong = secret[:-2] + ("AA" if secret[-2:] != "AA" else "BB")
    env = clean_env(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_SECRET_KEY="test-secret-key",
        BYTESPIKE_LOG_LEVEL="DEBUG",
    )
    with serving(env, tmp_path) as (base,):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            chat = await http.post(
                "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {secret}"}
            )
            account = await http.get("/api/v1/me/account", headers={"x-api-key": secret})
            refused = await http.get("/api/v1/me/account", headers={"x-api-key": wrong})
            anthropic = await http.post(
                "/v1/messages", json={**CHAT, "max_tokens": 16}, headers={"x-api-key": secret}
            )
    assert (chat.status_code, account.status_code, refused.status_code) == (200, 200, 401)
    assert anthropic.status_code == 200, anthropic.text

    logged = (tmp_path / "serve-0.log").read_text()
    assert logged.count('"logger":"bytespike.access"') >= 4  # this server's log, these calls
    for material in (secret, wrong):
        digest = hashlib.sha256(material.encode()).hexdigest()
        assert material not in logged
        assert digest not in logged
        assert material[:12] not in logged  # the prefix shown in listings
        assert material[4:12] not in logged  # the prefix's random part, on its own
