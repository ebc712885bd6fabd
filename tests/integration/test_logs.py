"""Structured logs: JSON lines with the request's facts, and never a secret."""

import json
import logging

import pytest

from bytespike.logs import JsonFormatter
from tests.factories import make_key, make_user, top_up


@pytest.fixture
def json_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()

    class Lines(list[dict[str, object]]):
        def refresh(self) -> None:
            self[:] = [json.loads(formatter.format(r)) for r in caplog.records]

    return Lines()


async def test_access_log_is_json_with_key_id_and_no_secret(ctx, client, json_records):
    await make_user(ctx)
    await top_up(ctx, "10", user="ada")
    key = await make_key(ctx)
    ok = await client.get("/api/v1/me/account", headers={"x-api-key": key["key"]})
    revoked_guess = key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B")
    bad = await client.get(
        "/api/v1/me/account", headers={"Authorization": f"Bearer {revoked_guess}"}
    )
    assert (ok.status_code, bad.status_code) == (200, 401)

    json_records.refresh()
    access = [r for r in json_records if r["logger"] == "bytespike.access"]
    assert [(r["status"], r["key_id"]) for r in access] == [(200, key["id"]), (401, None)]
    assert all(r["path"] == "/api/v1/me/account" and r["method"] == "GET" for r in access)
    everything = json.dumps(list(json_records))
    assert key["key"] not in everything
    assert revoked_guess not in everything
    assert key["key"][4:20] not in everything  # not even a fragment of the secret part
