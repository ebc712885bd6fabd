"""The reference's curl and Python example, run unchanged but for the host, against a real
`bytespike serve` process on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bytespike.context import Context
from tests.factories import add_member, make_key, make_org, make_user, top_up
from tests.processes import clean_env, serving

# Verbatim from the reference, with only the host replaced.
PYTHON_EXAMPLE = """\
import os, requests

acc = requests.get(
    "https://llm.bytespike.ai/api/v1/me/account",
    headers={"Authorization": f"Bearer {os.environ['BYTESPIKE_API_KEY']}"},
    timeout=10,
).json()

if acc["balance"]["low_balance_flagged"]:
    print(f"Balance ${acc['balance']['available_usd']:.2f} ≤ threshold "
          f"${acc['balance']['low_balance_threshold_usd']:.2f} — top up.")
"""
CURL_EXAMPLE = """\
curl https://llm.bytespike.ai/api/v1/me/account \\
  -H "Authorization: Bearer $BYTESPIKE_API_KEY"
"""


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """`bytespike serve` on a free port over the test's database; yields its base URL."""
    env = clean_env(BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_SECRET_KEY="test-secret-key")
    with serving(env, tmp_path) as (base,):
        yield base


def swap_host(code: str, base: str) -> str:
    return code.replace("https://llm.bytespike.ai", base)


@pytest.fixture
async def low_balance_key(ctx: Context) -> str:
    """ada with $3.10 left against the default $5.00 threshold, in Dosia AI as admin."""
    await make_user(ctx)
    await make_org(ctx)
    await add_member(ctx, "Dosia AI", "ada", "admin")
    await top_up(ctx, "3.1", user="ada")
    return str((await make_key(ctx))["key"])


def run_python_example(server: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", swap_host(PYTHON_EXAMPLE, server)],
        env=clean_env(BYTESPIKE_API_KEY=key),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_python_example_prints_the_low_balance_gate(low_balance_key: str, server: str) -> None:
    result = run_python_example(server, low_balance_key)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Balance $3.10 ≤ threshold $5.00 — top up.\n"


@pytest.fixture
async def key_just_above_threshold(ctx: Context, low_balance_key: str) -> str:
    await top_up(ctx, "1.900001", user="ada")  # $5.000001: one micro-dollar above $5.00
    return low_balance_key


def test_python_example_is_silent_above_the_threshold(
    key_just_above_threshold: str, server: str
) -> None:
    result = run_python_example(server, key_just_above_threshold)

    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_curl_example_and_x_api_key(low_balance_key: str, server: str) -> None:
    key = low_balance_key
    env = clean_env(BYTESPIKE_API_KEY=key)

    by_bearer = subprocess.run(
        ["bash", "-c", swap_host(CURL_EXAMPLE, server)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    by_header = subprocess.run(
        ["curl", "-sS", "--fail", f"{server}/api/v1/me/account", "-H", f"x-api-key: {key}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    body = json.loads(by_bearer.stdout)
    assert json.loads(by_header.stdout) == body
    assert body["user"]["username"] == "ada"
    assert body["balance"] == {
        "available_usd": 3.1,
        "lifetime_topup_usd": 3.1,
        "lifetime_spent_usd": 0.0,
        "low_balance_threshold_usd": 5.0,
        "low_balance_flagged": True,
    }
    assert [m["id"] for m in body["allowed_models"]] == [
        "claude-sonnet-4-6",
        "gpt-5-4",
        "gemini-3-1-pro",
        "mock",
        "text-embedding-3-small",
        "gemini-embedding-001",
    ]
    assert body["org"]["name"] == "Dosia AI" and body["org"]["role"] == "admin"


def test_garbage_headers_get_401_from_the_real_server(low_balance_key: str, server: str) -> None:
    assert low_balance_key  # a real key exists; none of these headers carries it
    url = f"{server}/api/v1/me/account"
    raw_non_ascii = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            url,
            "-H",
            b"Authorization: Bearer bsk-\xff\xfe\xe9",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    responses = [
        requests.get(url, timeout=10),
        requests.get(url, headers={"Authorization": "Bearer " + "k" * 10_240}, timeout=10),
        requests.get(url, headers={"Authorization": "Basic YWRhOnB3"}, timeout=10),
        requests.get(url, headers={"x-api-key": "bsk-" + "Q" * 43}, timeout=10),
    ]

    body, _, status = raw_non_ascii.stdout.rpartition(b"\n")
    assert status == b"401"
    assert json.loads(body)["error"]["type"] == "authentication_error"
    for response in responses:
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert requests.get(f"{server}/openapi.json", timeout=10).json()["paths"]["/api/v1/me/account"]
