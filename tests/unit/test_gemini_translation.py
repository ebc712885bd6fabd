"""OpenAI chat requests → Gemini requests, and Gemini answers → OpenAI completions and
chunks, on payloads shaped like Google's published examples."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bytespike.errors import InvalidRequest
from bytespike.upstream import gemini_response
from bytespike.upstream.base import UpstreamError, UpstreamMalformed, Usage
from bytespike.upstream.gemini_request import clean_schema, generate_content_request
from tests.openai_schema import assert_valid

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "options": {
                    "type": "object",
                    "properties": {"detail": {"type": "boolean"}},
                    "additionalProperties": False,
                },
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def test_system_user_and_assistant_turns() -> None:
    out = generate_content_request(
        {
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            ],
            "max_completion_tokens": 256,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "n": 1,
        }
    )
    assert out == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Bonjour"}]},
            {"role": "user", "parts": [{"text": "Weather?"}]},
        ],
        "generationConfig": {
            "maxOutputTokens": 256,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    }


def test_images_go_inline_as_data_and_by_reference_as_urls() -> None:
    out = generate_content_request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/cat.webp?s=1"},
                        },
                    ],
                }
            ]
        }
    )
    assert out["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?s=1"}},
    ]


def test_tools_become_function_declarations_gemini_accepts() -> None:
    out = generate_content_request(
        {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [
                WEATHER_TOOL,
                {
                    "type": "function",
                    "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
                },
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
    )
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "City name"},
                            "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                            "options": {
                                "type": "object",
                                "properties": {"detail": {"type": "boolean"}},
                            },
                        },
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # Gemini rejects an object schema with no properties
            ]
        }
    ]
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


def test_references_in_tool_schemas_are_written_out() -> None:
    """Pydantic-made schemas (the openai SDK's `pydantic_function_tool`) name nested models
    in `$defs`; Gemini has no `$ref`, so each is inlined, and a recursive one stops."""
    parameters = {
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            },
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            },
        },
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
            "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
            "tree": {"$ref": "#/$defs/Node"},
        },
        "required": ["home"],
    }
    tool = {"type": "function", "function": {"name": "save", "parameters": parameters}}
    out = generate_content_request(
        {"messages": [{"role": "user", "content": "x"}], "tools": [tool]}
    )
    address = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
        "required": ["city"],
    }
    assert out["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "properties": {
            "home": {**address, "description": "Where they live"},
            "work": {"anyOf": [address, {"type": "null"}]},
            "tree": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"type": "object"}}},
            },
        },
        "required": ["home"],
    }


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gemini-3.1-pro-preview", "low", {"thinkingLevel": "low"}),
        ("gemini-3.1-pro-preview", "medium", {"thinkingLevel": "high"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "low"}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("models/gemini-2.5-pro", "high", {"thinkingBudget": 24576}),
    ],
)
def test_reasoning_effort_becomes_gemini_thinking(
    model: str, effort: str, thinking: dict[str, Any]
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
    out = generate_content_request({**body, "reasoning_effort": effort})
    assert out["generationConfig"]["thinkingConfig"] == thinking
    assert "generationConfig" not in generate_content_request(body)
    with pytest.raises(InvalidRequest, match="reasoning_effort"):
        generate_content_request({**body, "reasoning_effort": "extreme"})


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_tool_choice_modes(choice: str, mode: str) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    out = generate_content_request({**body, "tool_choice": choice})
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_a_tool_round_trip_pairs_results_with_their_calls_by_name() -> None:
    out = generate_content_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_b__thought__c2lnbmF0dXJl",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 18}'},
                {
                    "role": "tool",
                    "tool_call_id": "call_b__thought__c2lnbmF0dXJl",
                    "content": "noon",
                },
            ]
        }
    )
    assert out["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {
                    "functionCall": {"name": "get_time", "args": {}},
                    "thoughtSignature": "c2lnbmF0dXJl",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "tool call"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "video"),
        ({"messages": []}, "messages"),
    ],
)
def test_requests_gemini_cannot_express_are_refused_before_sending(
    body: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidRequest, match=complaint):
        generate_content_request(body)


def test_response_format_json_schema_asks_for_json() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "additionalProperties": False,
    }
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    config = generate_content_request(body)["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }


# A generateContent answer from a thinking model, as the API returns it.
TEXT_ANSWER = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "Let me think...", "thought": True},
                    {"text": "Paris is "},
                    {"text": "sunny."},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 20,
        "candidatesTokenCount": 5,
        "totalTokenCount": 45,
        "cachedContentTokenCount": 8,
        "thoughtsTokenCount": 20,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc123",
}


def test_text_answer_with_thinking_billed_as_output() -> None:
    out = gemini_response.completion(TEXT_ANSWER, model="gemini-2.5-flash")
    assert_valid("CreateChatCompletionResponse", out)
    assert out["id"] == "chatcmpl-abc123"
    assert out["choices"][0]["message"]["content"] == "Paris is sunny."  # no thoughts shown
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["prompt_tokens"] == 20
    assert out["usage"]["completion_tokens"] == 25
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 8}
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 20}
    assert gemini_response.usage_of(TEXT_ANSWER["usageMetadata"]) == Usage(
        20, 25, 8, reasoning_tokens=20
    )


def test_function_call_answer() -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2ln",
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 6},
    }
    out = gemini_response.completion(answer, model="gemini-3-pro")
    assert_valid("CreateChatCompletionResponse", out)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["id"].endswith("__thought__c2ln")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": reason}]}
    out = gemini_response.completion(answer, model="m")
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["finish_reason"] == finish


def test_a_blocked_prompt_is_a_content_filter_answer() -> None:
    answer = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    out = gemini_response.completion(gemini_response.parse(orjson.dumps(answer)), model="m")
    assert_valid("CreateChatCompletionResponse", out)
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["usage"]["prompt_tokens"] == 9


@pytest.mark.parametrize("raw", [b"<html>", b"[1, 2]", b'{"candidates": "no"}', b"{}"])
def test_bodies_that_are_not_answers_are_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamMalformed):
        gemini_response.completion(gemini_response.parse(raw), model="m")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
    ],
)
def test_error_bodies(status: int, kind: str) -> None:
    raw = orjson.dumps({"error": {"code": status, "message": "API key not valid", "status": "X"}})
    failure = gemini_response.error(status, raw)
    assert (failure.message, failure.type) == ("API key not valid", kind)
    assert failure.status == (status if status < 500 else 502)


def stream_events() -> list[dict[str, Any]]:
    """A streamGenerateContent?alt=sse answer: running usage, then totals on the last."""
    running = {"promptTokenCount": 11, "totalTokenCount": 11}
    return [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Par"}]}}],
            "usageMetadata": running,
            "responseId": "r1",
        },
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "is"}]}}],
            "usageMetadata": running,
            "responseId": "r1",
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "", "thoughtSignature": "c2ln"}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 11,
                "candidatesTokenCount": 2,
                "thoughtsTokenCount": 3,
                "totalTokenCount": 16,
            },
            "responseId": "r1",
        },
    ]


def test_a_text_stream_becomes_openai_chunks_ending_with_usage() -> None:
    translator = gemini_response.StreamTranslator(model="gemini-2.5-flash")
    chunks = [c for event in stream_events() for c in translator.chunks(event)]
    last = translator.last()
    assert last is not None
    for chunk in [*chunks, last]:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": "Par"},
        {"content": "is"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]
    assert {c["id"] for c in [*chunks, last]} == {"chatcmpl-r1"}
    assert last["choices"] == []
    assert (last["usage"]["prompt_tokens"], last["usage"]["completion_tokens"]) == (11, 5)
    assert translator.finished


def test_a_streamed_function_call_is_a_complete_tool_call_delta() -> None:
    translator = gemini_response.StreamTranslator(model="m")
    event = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
    }
    (chunk,) = translator.chunks(event)
    assert_valid("CreateChatCompletionStreamResponse", chunk)
    choice = chunk["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["delta"]["tool_calls"]
    assert call["index"] == 0 and call["function"] == {"name": "f", "arguments": '{"x":1}'}


def test_a_stream_that_never_reports_usage_ends_without_a_usage_chunk() -> None:
    translator = gemini_response.StreamTranslator(model="m")
    translator.chunks(
        {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    )
    assert translator.last() is None


def test_an_error_event_mid_stream_is_an_upstream_error() -> None:
    raw = (
        b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    )
    with pytest.raises(UpstreamError, match="overloaded") as caught:
        gemini_response.parse(raw)
    assert caught.value.status == 502


def test_a_reference_to_something_that_is_not_a_schema_is_a_plain_object() -> None:
    """Found by the fuzz test: a `$defs` entry that is not an object crashed the request."""
    for target in ("text", ["a"], 3, None):
        schema = {
            "$defs": {"x": target},
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/x"}},
        }
        assert clean_schema(schema)["properties"]["a"] == {"type": "object"}
