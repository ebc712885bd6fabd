"""The README's quickstart, as a newcomer runs it: a real `bytespike serve`, the CLI, then a
chat call to the built-in `mock` model that moves the balance by exactly its cost; and every
`curl` example of README.md and docs/webhooks.md, run as written against that server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anthropic
import openai
import pytest
import requests

from tests.processes import BYTESPIKE, clean_env, serving

MOCK_IN, MOCK_OUT = Decimal("3.00"), Decimal("15.00")  # the shipped catalog's mock prices
ROOT = Path(__file__).resolve().parents[2]
CURL_DOCS = ("README.md", "docs/webhooks.md")
# The hosts the examples are written for, and the webhook receiver they register.
EXAMPLE_HOSTS = ("http://127.0.0.1:8080", "https://llm.example.com")
EXAMPLE_RECEIVER = "https://hooks.example.com/bytespike"


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return clean_env(
        BYTESPIKE_DATABASE_URL=db_url,
        BYTESPIKE_SECRET_KEY="test-secret-key",
        # The docs' webhook example registers a receiver; here it is a local one.
        BYTESPIKE_WEBHOOK_ALLOW_PRIVATE="1",
    )


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


def curl_examples(markdown: str) -> list[str]:
    """The `curl` commands of a Markdown file's shell code blocks, continuation lines and
    quoted line breaks joined, each as the shell would read it."""
    commands = []
    for block in _shell_blocks(markdown):
        pending = ""
        for line in block:
            pending += line
            if pending.endswith("\\\n") or _open_quote(pending):
                continue
            if pending.lstrip().startswith("curl "):
                commands.append(pending.strip())
            pending = ""
    return commands


def _shell_blocks(markdown: str) -> Iterator[list[str]]:
    block: list[str] | None = None
    shell = False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```") and block is None:
            block, shell = [], line[3:].strip() in ("", "sh", "bash", "shell")
        elif line.startswith("```"):
            if shell:
                yield block
            block = None
        elif block is not None:
            block.append(line)


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:  # "No closing quotation": the command goes on on the next line
        return True
    return False


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A webhook receiver on loopback, answering every delivery 204."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bytespike"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_curl_examples_are_found_whole() -> None:
    """The extraction the next test relies on: multi-line commands come out whole."""
    readme, webhooks = (curl_examples((ROOT / name).read_text()) for name in CURL_DOCS)

    assert len(readme) >= 5 and len(webhooks) >= 1
    register = next(cmd for cmd in readme if "/me/webhooks" in cmd)
    assert shlex.split(register)[-1].endswith('"balance.topped_up"]}')
    assert "/me/notifications" in webhooks[0]


def test_every_curl_example_in_the_docs_answers_2xx(
    server: str, key: str, receiver: str, tmp_path: Path
) -> None:
    """Run as written, through bash with real `curl`; only the hosts are swapped, and the
    key is the shell's $KEY / $BYTESPIKE_API_KEY, as a reader's would be."""
    shell_env = clean_env(KEY=key, BYTESPIKE_API_KEY=key)
    failures = []
    for name in CURL_DOCS:
        for command in curl_examples((ROOT / name).read_text()):
            runnable = command.replace(EXAMPLE_RECEIVER, receiver)
            for host in EXAMPLE_HOSTS:
                runnable = runnable.replace(host, server)
            # -sS: no progress meter; each response's status goes to stderr, apart from the
            # body, which may be piped on (as in the README) and must stay untouched.
            runnable = runnable.replace("curl ", "curl -sS -w '%{stderr}HTTP %{http_code}\\n' ", 1)
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", runnable],
                env=shell_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            statuses = re.findall(r"^HTTP (\d{3})$", done.stderr, re.M)
            if done.returncode != 0 or len(statuses) != 1 or not statuses[0].startswith("2"):
                failures.append(
                    f"{name}: {command}\n-> {done.returncode} {statuses}\n"
                    f"{done.stdout}{done.stderr}"
                )
    assert not failures, "\n\n".join(failures)
