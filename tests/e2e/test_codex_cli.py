"""Codex CLI (`@openai/codex`, pinned in tests/clients, installed by `make test`) against a
running bytespike: a custom model provider pointed at the gateway (`wire_api =
"responses"`, the only one Codex speaks), one non-interactive prompt whose answer needs a
tool, for an OpenAI model (the Responses API natively) and translated ones. Each fake
upstream scripts a shell call, then the final answer once the call's output is back; the
ledger is charged exactly for both calls.

Skipped with the reason where Node.js or the package is missing, except in CI, where that
is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bytespike.context import Context
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost
from tests.fakes.base import FakeUpstream, Script
from tests.services import IN_CI

CODEX = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "codex"
MARK = "bytespike-tool-ok"
ANSWER = "The command printed the mark."
FIRST, SECOND = (1_500, 40), (1_800, 12)  # (input, output) tokens of the two calls
TIMEOUT = 120.0


@pytest.fixture
def codex() -> Path:
    problem = None
    if shutil.which("node") is None:
        problem = "Node.js is not installed"
    elif not CODEX.exists():
        problem = f"Codex CLI is not installed at {CODEX} (`make test` installs it with npm)"
    if problem is None:
        return CODEX
    if IN_CI:
        pytest.fail(f"{problem}; CI must run the Codex CLI test")
    pytest.skip(f"{problem}: install Node.js and npm, then run `make test`")


def fake_of(fakes: Upstreams, model: str) -> FakeUpstream:
    return {"gpt-5-4": fakes.openai, "claude-sonnet-4-6": fakes.anthropic}.get(model, fakes.gemini)


def config(base_url: str, model: str) -> str:
    return f"""
model = "{model}"
model_provider = "bytespike"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.bytespike]
name = "bytespike"
base_url = "{base_url}/v1"
env_key = "BYTESPIKE_API_KEY"
wire_api = "responses"
"""


async def run_codex(codex: Path, home: Path, key: str, prompt: str) -> tuple[int, str, str]:
    workdir = home / "work"
    workdir.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "CODEX_HOME": str(home / "codex"),
        "BYTESPIKE_API_KEY": key,
        "NO_COLOR": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--cd",
        str(workdir),
        prompt,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(), err.decode()


def tool_output_sent(model: str, body: dict[str, Any]) -> str:
    """The shell call's output as the second request carried it back to the model."""
    if model == "gpt-5-4":
        outputs = [i for i in body["input"] if i.get("type") == "function_call_output"]
        assert [o["call_id"] for o in outputs] == ["call_fake0001"]
        return str(outputs[0]["output"])
    if model == "claude-sonnet-4-6":
        blocks = [b for m in body["messages"] for b in m["content"] if isinstance(b, dict)]
        results = [b for b in blocks if b.get("type") == "tool_result"]
        assert len(results) == 1
        return json.dumps(results[0].get("content"))
    parts = [p for c in body["contents"] for p in c["parts"]]
    responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert len(responses) == 1
    return json.dumps(responses[0])


@pytest.mark.parametrize("model", ["gpt-5-4", "claude-sonnet-4-6", "gemini-3-1-pro"])
async def test_codex_runs_a_tool_round_trip_through_bytespike(
    ctx: Context,
    fakes: Upstreams,
    base_url: str,
    account: tuple[str, int],
    codex: Path,
    tmp_path: Path,
    model: str,
) -> None:
    key, wallet = account
    fake = fake_of(fakes, model)
    call = ("exec_command", {"cmd": f"echo {MARK}"})
    fake.queue = [
        Script(tool_call=call, input_tokens=FIRST[0], output_tokens=FIRST[1]),
        Script(text=ANSWER, input_tokens=SECOND[0], output_tokens=SECOND[1]),
    ]
    (tmp_path / "codex").mkdir()
    (tmp_path / "codex" / "config.toml").write_text(config(base_url, model))

    code, out, err = await run_codex(codex, tmp_path, key, "Run the command, then report.")

    assert code == 0, f"codex failed:\n{out}\n{err}"
    assert ANSWER in out, f"no final answer:\n{out}\n{err}"
    assert len(fake.requests) == 2, fake.paths
    assert MARK in tool_output_sent(model, fake.requests[1])
    balances = await books_balance(ctx, wallet)  # ledger.verify first
    assert balances.held == 0
    assert balances.spent == expected_cost(ctx, model, *FIRST) + expected_cost(ctx, model, *SECOND)
