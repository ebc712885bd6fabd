"""Anthropic Messages ↔ OpenAI Chat Completions, every direction, on realistic payloads.

OpenAI outputs are checked against the official OpenAI schema; Anthropic outputs are parsed
with the official `anthropic` SDK's own types (and its stream accumulator)."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from bytespike.errors import InvalidRequest
from bytespike.translate.anthropic import (
    MessagesStreamToOpenAI,
    OpenAIStreamToMessages,
    fold_stream_usage,
    message_to_openai,
    messages_request_to_openai,
    openai_request_to_messages,
    openai_to_message,
)
from bytespike.upstream.base import UpstreamMalformed, Usage, usage_from_anthropic
from tests.openai_schema import assert_valid

# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


# --- OpenAI request → Anthropic request --------------------------------------------------


def test_openai_request_with_tool_loop_becomes_alternating_messages() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_completion_tokens": 512,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": "END",
        "stream": True,
        "user": "user-42",
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris and Oslo? Also, this image:"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "4°C"}],
            },
            {"role": "user", "content": "And tomorrow?"},
        ],
    }

    out = openai_request_to_messages(body)

    assert out["model"] == "claude-sonnet-4-5"
    assert out["max_tokens"] == 512
    assert out["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Use metric units."},
    ]
    assert out["temperature"] == 0.3 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "user-42"}
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert out["tool_choice"] == {"type": "auto"}
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    first, assistant, results = out["messages"]
    assert first["content"] == [
        {"type": "text", "text": "Weather in Paris and Oslo? Also, this image:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert assistant["content"] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    # Both tool results and the follow-up question share one user turn, results first.
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "4°C"},
        {"type": "text", "text": "And tomorrow?"},
    ]


def test_openai_request_merges_consecutive_user_messages_and_falls_back_to_max_tokens() -> None:
    out = openai_request_to_messages(
        {
            "model": "m",
            "max_tokens": 100,
            "temperature": 1.7,
            "stop": ["\n\n", "###"],
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "three"},
            ],
        }
    )
    assert out["max_tokens"] == 100
    assert out["temperature"] == 1.0  # Anthropic's ceiling
    assert out["stop_sequences"] == ["\n\n", "###"]
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "one"},
                {"type": "text", "text": "two"},
                {"type": "text", "text": "three"},
            ],
        }
    ]
    assert "system" not in out and "tools" not in out and "stream" not in out


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_mapping(choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_completion_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER_TOOL],
    }
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert openai_request_to_messages(body).get("tool_choice") == expected


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"n": 2}, "n must be 1"),
        ({"messages": []}, "messages"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input_audio",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "arguments",
        ),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "function tools"),
    ],
)
def test_openai_request_errors(change: dict[str, Any], complaint: str) -> None:
    body = {
        "model": "m",
        "max_completion_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with pytest.raises(InvalidRequest, match=complaint):
        openai_request_to_messages({**body, **change})


# --- Anthropic Message → OpenAI chat.completion -------------------------------------------


def anthropic_message(**overrides: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig"},
            {"type": "text", "text": "Let me check that."},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 100,
            "output_tokens": 33,
        },
    }
    return {**message, **overrides}


def test_message_to_openai_with_tool_use_and_cache() -> None:
    message = anthropic_message()
    Message.model_validate(message)  # the fixture itself is a real Message

    completion = message_to_openai(message, created=1_700_000_000)

    assert_valid("CreateChatCompletionResponse", completion)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check that."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01A",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert completion["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 33,
        "total_tokens": 158,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    }
    assert completion["model"] == "claude-sonnet-4-5-20250929"
    assert completion["created"] == 1_700_000_000


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_message_to_openai_stop_reasons(stop: str, finish: str) -> None:
    message = anthropic_message(content=[{"type": "text", "text": "ok"}], stop_reason=stop)
    completion = message_to_openai(message)
    assert_valid("CreateChatCompletionResponse", completion)
    assert completion["choices"][0]["finish_reason"] == finish
    assert "tool_calls" not in completion["choices"][0]["message"]


def test_message_to_openai_rejects_what_is_not_a_message() -> None:
    with pytest.raises(UpstreamMalformed):
        message_to_openai({"completion": "hi"})


# --- Anthropic stream → OpenAI chunks ----------------------------------------------------


def anthropic_stream(*, with_stop: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """A tool-use turn as Anthropic streams it (recorded shape)."""
    start = anthropic_message(content=[], stop_reason=None)
    start["usage"] = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1000,
        "output_tokens": 2,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Okay,"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " checking."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ris"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
    ]
    if with_stop:
        events.append(("message_stop", {"type": "message_stop"}))
    for _, data in events:
        if data["type"] != "ping":
            STREAM_EVENT.validate_python(data)  # the fixture is a real event sequence
    return events


def test_anthropic_stream_to_openai_chunks() -> None:
    translator = MessagesStreamToOpenAI(created=1_700_000_000)
    chunks = [c for event, data in anthropic_stream() for c in translator.feed(event, data)]
    chunks += translator.finish()  # nothing more: message_stop already closed it

    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    assert {c["id"] for c in chunks} == {"msg_01XFDUDYJgAACzvnptvVoYEL"}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "Okay, checking."
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 1472,
        "completion_tokens": 89,
        "total_tokens": 1561,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    assert sum(1 for c in chunks if "usage" in c) == 1


def test_anthropic_stream_without_message_stop_gets_usage_from_finish() -> None:
    translator = MessagesStreamToOpenAI()
    for event, data in anthropic_stream(with_stop=False):
        translator.feed(event, data)
    final = translator.finish()
    assert len(final) == 1 and final[0]["usage"]["completion_tokens"] == 89
    assert translator.finish() == []


def test_fold_stream_usage() -> None:
    usage = None
    for event, data in anthropic_stream():
        usage = fold_stream_usage(event, data, usage)
    assert usage == Usage(input_tokens=1472, output_tokens=89, cached_tokens=1000)

    # The current API may restate every input count on message_delta; they replace.
    restated = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 500,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 1000,
            "output_tokens": 120,
        },
    }
    assert fold_stream_usage("message_delta", restated, usage) == Usage(
        1510, 120, 1000, cache_write_tokens=10
    )
    assert fold_stream_usage("ping", {"type": "ping"}, usage) is usage
    no_usage = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    assert fold_stream_usage("message_delta", no_usage, usage) is usage


# --- Anthropic request (from a client) → OpenAI request ----------------------------------


def test_messages_request_with_tool_loop_becomes_openai_messages() -> None:
    body = {
        "model": "gpt-4.1",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Metric units."},
        ],
        "temperature": 0.2,
        "top_p": 0.8,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Weather in Paris? See the map.",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/map.png"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need the tool.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Lyon"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "station offline"},
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://example.com/err.png"},
                            },
                        ],
                    },
                    {"type": "text", "text": "Thanks. Summarise."},
                ],
            },
        ],
    }

    out = messages_request_to_openai(body)

    assert_valid("CreateChatCompletionRequest", out)
    assert out["max_completion_tokens"] == 1024
    assert out["stop"] == ["END"]
    assert out["temperature"] == 0.2 and out["top_p"] == 0.8 and "top_k" not in out
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert out["tools"][0]["function"]["name"] == "get_weather"
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    system, user, assistant, result1, result2, follow_up = out["messages"]
    assert system["content"] == "You are terse.\n\nMetric units."
    assert user["content"] == [
        {"type": "text", "text": "Weather in Paris? See the map."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/map.png"}},
    ]
    assert assistant["content"] == "Checking."
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"city": "Paris"},
        {"city": "Lyon"},
    ]
    assert [c["id"] for c in assistant["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert result1 == {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"}
    assert result2 == {
        "role": "tool",
        "tool_call_id": "toolu_2",
        "content": "Error: station offline",
    }
    assert follow_up["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/err.png"}},
        {"type": "text", "text": "Thanks. Summarise."},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
    ],
)
def test_messages_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = messages_request_to_openai(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": choice,
        }
    )
    assert {k: out[k] for k in expected} == expected
    assert "max_completion_tokens" not in out  # the proxy fills it


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"model": "m"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "system", "content": [{"type": "image"}]}]}, "only text"),
        ({"messages": [{"role": "user", "content": 42}]}, "content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "document",
        ),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "type"),
        ({"messages": [{"role": "user", "content": "x"}], "system": [{"type": "image"}]}, "system"),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "w"}],
            },
            "web_search",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "tool"}},
            "tool_choice",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            },
            "source",
        ),
    ],
)
def test_messages_request_errors(body: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidRequest, match=complaint):
        messages_request_to_openai(body)


# --- OpenAI chat.completion → Anthropic Message ------------------------------------------


def openai_completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    completion = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4.1-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, "content": None, **message},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 1117,
            "completion_tokens": 46,
            "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        },
    }
    assert_valid("CreateChatCompletionResponse", completion)
    return completion


def test_openai_to_message_with_text_and_tool_calls() -> None:
    completion = openai_completion(
        {
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        "tool_calls",
    )

    message = openai_to_message(completion, "my-gpt")

    parsed = Message.model_validate(message)
    assert parsed.id == "msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert parsed.model == "my-gpt"
    assert parsed.stop_reason == "tool_use"
    assert message["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert message["usage"] == {
        "input_tokens": 93,
        "output_tokens": 46,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1024,
    }
    # Billing reads it back to exactly what the upstream reported.
    assert usage_from_anthropic(message["usage"]) == Usage(1117, 46, 1024)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_openai_to_message_stop_reasons(finish: str, stop: str) -> None:
    message = openai_to_message(openai_completion({"content": "Hi."}, finish), "m")
    Message.model_validate(message)
    assert message["stop_reason"] == stop
    assert message["content"] == [{"type": "text", "text": "Hi."}]


def test_openai_refusal_becomes_refusal_text() -> None:
    message = openai_to_message(openai_completion({"refusal": "I can't help."}, "stop"), "m")
    Message.model_validate(message)
    assert message["stop_reason"] == "refusal"
    assert message["content"] == [{"type": "text", "text": "I can't help."}]


def test_openai_to_message_rejects_bad_tool_arguments() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}
    with pytest.raises(UpstreamMalformed):
        openai_to_message(openai_completion({"tool_calls": [call]}, "tool_calls"), "m")


# --- OpenAI chunks → Anthropic stream ----------------------------------------------------


def openai_chunks() -> list[dict[str, Any]]:
    """Text then two parallel tool calls, as OpenAI streams them with include_usage."""
    head = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, **fields}]})

    chunks = [
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "Checking "}),
        chunk({"content": "both."}),
        call(0, id="call_1", type="function", function={"name": "get_weather", "arguments": ""}),
        call(0, function={"arguments": '{"city":'}),
        call(0, function={"arguments": ' "Paris"}'}),
        call(
            1,
            id="call_2",
            type="function",
            function={"name": "get_weather", "arguments": '{"city"'},
        ),
        call(1, function={"arguments": ': "Oslo"}'}),
        chunk({}, "tool_calls"),
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": 300,
                "completion_tokens": 40,
                "total_tokens": 340,
                "prompt_tokens_details": {"cached_tokens": 256},
            },
        },
    ]
    for c in chunks:
        assert_valid("CreateChatCompletionStreamResponse", c)
    return chunks


def test_openai_chunks_to_anthropic_events() -> None:
    translator = OpenAIStreamToMessages("my-gpt", message_id="msg_fixed")
    events = [e for c in openai_chunks() for e in translator.feed(c)] + translator.finish()

    for name, data in events:
        assert data["type"] == name
        STREAM_EVENT.validate_python(data)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_fixed" and start["model"] == "my-gpt"
    assert start["usage"]["input_tokens"] == 0  # not known until OpenAI's last chunk
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 44,
        "output_tokens": 40,
        "cache_read_input_tokens": 256,
    }

    # The official SDK's accumulator rebuilds the whole Message from our events.
    snapshot = None
    buffers: dict[int, bytes] = {}
    for _, data in events:
        snapshot = accumulate_event(
            event=STREAM_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=buffers
        )
    assert snapshot is not None
    final = Message.model_validate(snapshot.model_dump())
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Checking both."  # type: ignore[union-attr]
    assert [(b.id, b.input) for b in final.content[1:]] == [  # type: ignore[union-attr]
        ("call_1", {"city": "Paris"}),
        ("call_2", {"city": "Oslo"}),
    ]
    assert final.usage.input_tokens == 44
    assert final.usage.cache_read_input_tokens == 256
    assert final.usage.output_tokens == 40


def test_empty_openai_stream_still_makes_a_whole_anthropic_stream() -> None:
    translator = OpenAIStreamToMessages("m")
    events = translator.finish()
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    for _, data in events:
        STREAM_EVENT.validate_python(data)
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert events[1][1]["delta"]["stop_reason"] == "end_turn"


# --- Round trips -------------------------------------------------------------------------


def test_anthropic_client_request_survives_both_translations() -> None:
    """Anthropic client → OpenAI lingua franca → Anthropic upstream keeps the conversation."""
    original = {
        "model": "claude",
        "max_tokens": 200,
        "system": "Be brief.",
        "stop_sequences": ["###"],
        "tools": [
            {"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [
            {"role": "user", "content": "Call f."},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "done"}],
            },
        ],
    }
    back = openai_request_to_messages(messages_request_to_openai(original))
    assert back["system"] == [{"type": "text", "text": "Be brief."}]
    assert back["max_tokens"] == 200 and back["stop_sequences"] == ["###"]
    assert back["tools"] == original["tools"]
    assert back["tool_choice"] == original["tool_choice"]
    assert back["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Call f."}]},
        original["messages"][1],
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "done"}],
        },
    ]


def test_a_hundred_thousand_same_role_messages_merge_into_one_turn() -> None:
    """Merging consecutive turns is linear: it once copied the turn for every message
    (86 s for this request, stalling every other one)."""
    words = [{"role": "user", "content": f"w{i}"} for i in range(100_000)]
    out = openai_request_to_messages({"model": "m", "max_completion_tokens": 5, "messages": words})
    assert len(out["messages"]) == 1
    blocks = out["messages"][0]["content"]
    assert [b["text"] for b in blocks[:3]] == ["w0", "w1", "w2"] and len(blocks) == 100_000
