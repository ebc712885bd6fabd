"""The README quickstart's last step on a real `bytespike serve`: a password set with the
CLI, then signing in to the console through its form, as a newcomer's browser would."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.console.support import csrf_of, payload_of
from tests.processes import BYTESPIKE, clean_env, serving


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return clean_env(BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_SECRET_KEY="test-secret-key")


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with serving(env, tmp_path) as (base,):
        yield base


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [BYTESPIKE, *args], env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_quickstart_ends_signed_in(env: dict[str, str], server: str) -> None:
    cli(env, "users", "create", "--username", "ada", "--email", "ada@dosia.ai")
    cli(env, "credits", "topup", "--user", "ada", "--usd", "250")
    key = cli(env, "keys", "create", "--user", "ada", "--json")
    cli(
        env,
        "users",
        "set-password",
        "ada",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    browser = requests.Session()
    form = browser.get(f"{server}/")  # redirected to /console/, then to the sign-in form
    assert form.url == f"{server}/console/login?next=/console/"
    signed_in = browser.post(
        f"{server}/console/login",
        data={
            "csrf_token": csrf_of(form.text),
            "username": "ada@dosia.ai",
            "password": "correct horse battery staple",
        },
    )
    assert signed_in.url == f"{server}/console/" and signed_in.status_code == 200
    assert "$250.00" in signed_in.text
    secret = key.split('"key":"')[1].split('"')[0]
    api = browser.get(f"{server}/api/v1/me/account", headers={"x-api-key": secret}, timeout=10)
    assert payload_of(signed_in.text) == api.content
