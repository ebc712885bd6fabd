"""Claude Code (the pinned @anthropic-ai/claude-code in tests/clients) through bytespike on an
OpenAI and a Gemini model: one non-interactive prompt with a tool round trip, billed to the
micro-dollar.

Claude Code sends what the public Messages reference does not have (a system item inside
`messages`, adaptive `thinking`, `output_config.effort`, `context_management`, a beta
header, a deferred tool), so this is the check that the gateway takes it all. It runs with
its own HOME and config dir, no telemetry and no traffic but the model's.

Skipped, with the reason, only where Claude Code is not installed (`make test` installs it
where npm is); in CI it must run.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bytespike.context import Context
from tests.e2e.gateway_support import Upstreams, books_balance, expected_cost, gateway
from tests.factories import make_key, make_user, top_up, wallet_of
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import gemini as gemini_fake
from tests.fakes import openai as openai_fake
from tests.fakes.base import FakeUpstream, serve

CLAUDE = Path(__file__).parents[1] / "clients" / "node_modules" / ".bin" / "claude"
RUN_SECONDS = 180
SECRET = "The vault code is 7316-alpha."
ANSWER = "The file says the vault code is 7316-alpha."


def claude_or_skip() -> Path:
    if CLAUDE.is_file() and os.access(CLAUDE, os.X_OK):
        return CLAUDE
    reason = f"Claude Code is not installed at {CLAUDE} (make test installs it where npm is)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


Routes = Callable[[FakeUpstream], list[web.RouteDef]]


def answering_tool_results(routes: Routes, path: str, answered: Callable[[Any], bool]) -> Routes:
    """A fake whose model (at `path`) calls the scripted tool until the request holds the
    tool's result (`answered`), then answers in text: the round trip a real model makes."""

    def wrapped(fake: FakeUpstream) -> list[web.RouteDef]:
        table = routes(fake)
        [model] = [r for r in table if r.path == path and r.method == "POST"]

        async def handler(request: web.Request) -> web.StreamResponse:
            if answered(await request.json()):  # aiohttp keeps the body for the fake
                fake.script.tool_call, fake.script.text = None, ANSWER
            return await model.handler(request)  # type: ignore[no-any-return]

        return [web.post(path, handler), *(r for r in table if r is not model)]

    return wrapped


def _has_tool_message(body: Any) -> bool:
    return any(m.get("role") == "tool" for m in body.get("messages") or ())


def _has_function_response(body: Any) -> bool:
    parts = [p for c in body.get("contents") or () for p in c.get("parts") or ()]
    return any("functionResponse" in p for p in parts)


@pytest.fixture
async def fakes() -> AsyncIterator[Upstreams]:
    openai_routes = answering_tool_results(
        openai_fake.routes, "/v1/chat/completions", _has_tool_message
    )
    gemini_routes = answering_tool_results(
        gemini_fake.routes, "/v1beta/models/{target}", _has_function_response
    )
    async with (
        serve(openai_routes, sdk_path="/v1", refuse=openai_fake.refusal) as openai,
        anthropic_fake.running() as anthropic,
        serve(gemini_routes, refuse=gemini_fake.refusal) as gemini,
    ):
        for fake in (openai, gemini):
            fake.script.input_tokens, fake.script.output_tokens = 1234, 567
        yield Upstreams(openai=openai, anthropic=anthropic, gemini=gemini)


def claude_env(home: Path, base_url: str, key: str, model: str) -> dict[str, str]:
    """Only what Claude Code needs: nothing of the developer's own settings or keys."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        # Background calls (titles, summaries) would go to a Haiku the catalog lacks.
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
    }


async def run_claude(cwd: Path, env: dict[str, str], prompt: str, model: str) -> dict[str, Any]:
    """`claude -p` to its end; its JSON result."""
    process = await asyncio.create_subprocess_exec(
        str(claude_or_skip()),
        "-p",
        prompt,
        "--model",
        model,
        "--allowedTools",
        "Read",
        "--output-format",
        "json",
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"claude -p did not finish within {RUN_SECONDS}s")
    assert process.returncode == 0, f"claude -p exited {process.returncode}: {out!r} {err!r}"
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize("model", ["gpt-5-4", "gemini-3-1-pro"])
async def test_claude_code_reads_a_file_through_a_tool_and_the_wallet_pays_exactly(
    ctx: Context, fakes: Upstreams, tmp_path: Path, model: str
) -> None:
    claude_or_skip()
    await make_user(ctx, "ada")
    await top_up(ctx, "10", user="ada")
    key = (await make_key(ctx, "ada"))["key"]
    wallet = await wallet_of(ctx, user="ada")
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    notes = work / "notes.txt"
    notes.write_text(SECRET + "\n")
    upstream = fakes.openai if model == "gpt-5-4" else fakes.gemini
    upstream.script.tool_call = ("Read", {"file_path": str(notes)})

    async with gateway(ctx, fakes) as base_url:
        env = claude_env(home, base_url, key, model)
        result = await run_claude(work, env, "What does notes.txt say?", model)

    assert result["is_error"] is False and result["result"] == ANSWER
    calls = upstream.requests
    assert len(calls) >= 2 and sum(len(fake.requests) for fake in fakes.all()) == len(calls)
    first, last = calls[0], calls[-1]
    if model == "gpt-5-4":
        # Claude Code's system item inside `messages` is a system message, its effort
        # OpenAI's reasoning_effort.
        assert [m["role"] for m in first["messages"]].count("system") >= 2
        assert first["reasoning_effort"] in ("low", "medium", "high", "xhigh")
        assert first["stream"] is True and first["tools"]
        [answered] = [m for m in last["messages"] if m["role"] == "tool"]
    else:
        # Both system texts are Gemini's systemInstruction, the effort its thinking level.
        assert len(first["systemInstruction"]["parts"]) >= 2
        assert first["generationConfig"]["thinkingConfig"]["thinkingLevel"] in ("low", "high")
        assert upstream.paths[0].endswith(":streamGenerateContent?alt=sse")
        parts = [p for c in last["contents"] for p in c["parts"]]
        [answered] = [p for p in parts if "functionResponse" in p]
    assert SECRET in json.dumps(answered)  # the tool ran on the file; the model got it
    # Every call paid exactly what the upstream reported, nothing held back.
    balances = await books_balance(ctx, wallet)
    cost = len(calls) * expected_cost(ctx, model, 1234, 567)
    assert (balances.spent, balances.held, balances.available) == (cost, 0, 10_000_000 - cost)
