"""The built-in mock upstream: labelled, deterministic, and billed within the cap."""

from __future__ import annotations

from typing import Any

from bytespike.upstream.mock import MockProvider
from tests.openai_schema import assert_valid


def request(text: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "mock-1",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": text},
        ],
        **extra,
    }


async def collect(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk async for chunk in MockProvider().stream(body)]


async def test_reply_is_labelled_and_echoes_the_last_user_message() -> None:
    out = await MockProvider().complete(request())
    assert_valid("CreateChatCompletionResponse", out)
    message = out["choices"][0]["message"]
    assert message["content"] == "[mock] You said: What is the capital of France?"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["model"] == "mock-1"


async def test_usage_is_computed_from_the_request() -> None:
    out = await MockProvider().complete(request())
    # ceil(16/4)+4 for the system message, ceil(30/4)+4 for the user's; the reply has 47 bytes.
    assert out["usage"]["prompt_tokens"] == 8 + 12
    assert out["usage"]["completion_tokens"] == 12
    assert out["usage"]["total_tokens"] == 32


async def test_same_request_same_answer() -> None:
    first = await MockProvider().complete(request())
    second = await MockProvider().complete(request())
    assert first["id"] == second["id"]
    assert first["choices"] == second["choices"] and first["usage"] == second["usage"]
    other = await MockProvider().complete(request("Something else"))
    assert other["id"] != first["id"]


async def test_long_messages_are_echoed_truncated() -> None:
    out = await MockProvider().complete(request("é" * 500))
    assert out["choices"][0]["message"]["content"] == "[mock] You said: " + "é" * 200


async def test_output_never_exceeds_max_completion_tokens() -> None:
    out = await MockProvider().complete(request(max_completion_tokens=5))
    assert_valid("CreateChatCompletionResponse", out)
    assert out["usage"]["completion_tokens"] == 5
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["choices"][0]["message"]["content"] == "[mock] You said: Wha"  # 20 bytes


async def test_a_required_tool_choice_gets_a_tool_call() -> None:
    tools = [
        {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_weather"}},
    ]
    named = {"type": "function", "function": {"name": "get_weather"}}
    for choice, name in [("required", "search"), (named, "get_weather")]:
        out = await MockProvider().complete(request(tools=tools, tool_choice=choice))
        assert_valid("CreateChatCompletionResponse", out)
        assert out["choices"][0]["finish_reason"] == "tool_calls"
        (call,) = out["choices"][0]["message"]["tool_calls"]
        assert call["function"] == {"name": name, "arguments": "{}"}
    auto = await MockProvider().complete(request(tools=tools, tool_choice="auto"))
    assert auto["choices"][0]["message"]["content"].startswith("[mock]")


async def test_stream_sends_the_same_reply_word_by_word_then_usage() -> None:
    whole = await MockProvider().complete(request())
    chunks = await collect(request())
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    words = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(w for w in words if w) == whole["choices"][0]["message"]["content"]
    assert words[1:4] == ["[mock]", " You", " said:"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


async def test_stream_of_a_tool_call() -> None:
    tools = [{"type": "function", "function": {"name": "search"}}]
    chunks = await collect(request(tools=tools, tool_choice="required"))
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [call for delta in deltas for call in delta.get("tool_calls", ())]
    assert [(c["index"], c["function"]) for c in calls] == [
        (0, {"name": "search", "arguments": "{}"})
    ]
    assert calls[0]["id"].startswith("call_")
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
