"""The README's quickstart, as a newcomer runs it: a real `bytespike serve`, the CLI, then a
chat call to the built-in `mock` model that moves the balance by exactly its cost."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest
import requests

from tests.processes import BYTESPIKE, clean_env, serving

MOCK_IN, MOCK_OUT = Decimal("3.00"), Decimal("15.00")  # the shipped catalog's mock prices


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return clean_env(BYTESPIKE_DATABASE_URL=db_url, BYTESPIKE_SECRET_KEY="test-secret-key")


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with serving(env, tmp_path) as (base,):
        yield base


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([BYTESPIKE, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def key(env: dict[str, str], server: str) -> str:
    cli(env, "users", "create", "--username", "ada", "--email", "ada@dosia.ai")
    cli(env, "credits", "topup", "--user", "ada", "--usd", "250", "--reference", "invoice-0001")
    created = json.loads(cli(env, "keys", "create", "--user", "ada", "--json"))
    return str(created["key"])


def balance(server: str, key: str) -> dict[str, float]:
    answer = requests.get(
        f"{server}/api/v1/me/account", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    return answer.json()["balance"]  # type: ignore[no-any-return]


def cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (prompt_tokens * MOCK_IN + completion_tokens * MOCK_OUT) / 1_000_000


def test_a_mock_chat_call_moves_the_balance_by_its_exact_cost(server: str, key: str) -> None:
    answer = requests.post(
        f"{server}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "mock", "messages": [{"role": "user", "content": "Hello there"}]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["choices"][0]["message"]["content"] == "[mock] You said: Hello there"
    usage = reply["usage"]
    spent = cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert spent > 0
    after = balance(server, key)
    assert Decimal(str(after["lifetime_spent_usd"])) == spent
    assert Decimal(str(after["available_usd"])) == Decimal(250) - spent


def test_the_sdks_of_the_quickstart_work_against_a_real_server(server: str, key: str) -> None:
    with openai.OpenAI(base_url=f"{server}/v1", api_key=key) as client:
        chat = client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "Hi"}]
        )
    with anthropic.Anthropic(base_url=server, api_key=key) as claude:
        message = claude.messages.create(
            model="mock", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        )
    assert chat.choices[0].message.content == "[mock] You said: Hi"
    assert message.content[0].type == "text" and message.content[0].text == "[mock] You said: Hi"
    assert chat.usage is not None
    spent = cost(chat.usage.prompt_tokens, chat.usage.completion_tokens) + cost(
        message.usage.input_tokens, message.usage.output_tokens
    )
    assert Decimal(str(balance(server, key)["lifetime_spent_usd"])) == spent
