"""Gemini's client format, pure parts: snake_case names, the hold's bound, the request's
translation to the OpenAI shape and answers and streams back, stream framing, the error
envelope; and the embeddings translations."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from bytespike.billing import pricing
from bytespike.errors import InsufficientBalance, InvalidRequest
from bytespike.proxy import gemini, gemini_errors
from bytespike.proxy.gemini_schema import camel_case
from bytespike.translate.generate_request import generate_request_to_openai, json_schema
from bytespike.translate.generate_response import ChunksToGenerate, completion_to_generate
from bytespike.upstream import embeddings, gemini_embed
from bytespike.upstream.base import UpstreamError, UpstreamMalformed

HI = {"parts": [{"text": "Hi"}]}


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


# --- names and the bound -------------------------------------------------------------------


def test_snake_case_names_are_read_as_gemini_reads_them_but_not_the_clients_own_keys():
    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"inline_data": {"mime_type": "image/png", "data": "AAAA"}}),
            model({"function_call": {"name": "f", "args": {"city_name": "Paris"}}}),
        ],
        "generation_config": {"max_output_tokens": 5, "response_json_schema": {"a_b": 1}},
        "tools": [
            {
                "function_declarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city_name": {"max_length": 3}},
                        },
                    }
                ]
            }
        ],
    }
    assert camel_case(body) == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"inlineData": {"mimeType": "image/png", "data": "AAAA"}}),
            model({"functionCall": {"name": "f", "args": {"city_name": "Paris"}}}),
        ],
        "generationConfig": {"maxOutputTokens": 5, "responseJsonSchema": {"a_b": 1}},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city_name": {"maxLength": 3}},
                        },
                    }
                ]
            }
        ],
    }
    with pytest.raises(InvalidRequest, match="given twice"):
        camel_case({"generationConfig": {}, "generation_config": {}})


def test_the_bound_counts_every_byte_each_content_and_each_inline_media_part():
    body = {
        "contents": [
            user({"text": "Hi"}),
            user({"inline_data": {"mime_type": "image/png", "data": "AA"}}),
        ],
        "generation_config": {"max_output_tokens": 7},
    }
    spec = gemini.FORMAT.parse(body)
    framing = pricing.MESSAGE_OVERHEAD_TOKENS * 2 + pricing.IMAGE_TOKENS
    assert spec.input_tokens == pricing.input_bound(body) + framing
    assert (spec.max_tokens, spec.stream, spec.referenced) == (7, False, 0)
    assert gemini.STREAM_SSE.parse(body).stream


@pytest.mark.parametrize(
    "extra",
    [
        {"contents": [user({"file_data": {"file_uri": "https://x/f", "mime_type": "video/mp4"}})]},
        {"cached_content": "cachedContents/abc"},
    ],
)
def test_input_the_body_only_names_is_bounded_by_the_context_window(extra):
    spec = gemini.FORMAT.parse({"contents": [HI], **extra})
    assert spec.referenced == 1  # the pipeline adds the model's context window once


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"parts": [{"text": 3}]}]}, "contents[0].parts[0].text"),
        (
            {"contents": [HI], "generationConfig": {"maxOutputTokens": 0}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [HI], "generationConfig": {"thinkingConfig": {"thinkingLevel": "MAX"}}},
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        (
            {"contents": [HI], "toolConfig": {"functionCallingConfig": {"mode": "ALWAYS"}}},
            "toolConfig.functionCallingConfig.mode",
        ),
    ],
)
def test_a_field_of_the_wrong_shape_is_refused_naming_it(body, param):
    with pytest.raises(InvalidRequest) as refused:
        gemini.FORMAT.parse(body)
    assert refused.value.param == param


# --- the request, translated ---------------------------------------------------------------


def test_contents_become_messages_and_function_responses_answer_their_calls():
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
        "contents": [
            user({"text": "Weather?"}),
            model(
                {"text": "thinking...", "thought": True},
                {"functionCall": {"id": "c1", "name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
            ),
            user(
                {"functionResponse": {"id": "c1", "name": "weather", "response": {"sky": "clear"}}},
                {"functionResponse": {"name": "weather", "response": {"sky": "grey"}}},
                {"text": "And so?"},
            ),
        ],
    }
    assert generate_request_to_openai(body)["messages"] == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_1_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        # By id: that call; without one, the oldest call of that name still open.
        {"role": "tool", "tool_call_id": "c1", "content": '{"sky":"clear"}'},
        {"role": "tool", "tool_call_id": "call_1_1", "content": '{"sky":"grey"}'},
        {"role": "user", "content": "And so?"},
    ]


def test_media_parts_become_openai_content_parts():
    parts = [
        {"text": "Look"},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "BBBB"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "CCCC"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/cat.jpg"}},
    ]
    content = generate_request_to_openai({"contents": [user(*parts)]})["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "BBBB", "format": "wav"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,CCCC", "filename": "document.pdf"},
        },
        {"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}},
    ]


def test_tools_settings_and_structured_output_are_mapped():
    body = {
        "contents": [HI],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "f",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"n": {"type": "INTEGER", "nullable": True}},
                        },
                    },
                    {"name": "g"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.9,
            "topK": 40,
            "seed": 7,
            "stopSequences": ["x"],
            "candidateCount": 1,
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "ARRAY",
                "items": {"type": "STRING"},
                "propertyOrdering": ["a"],
            },
            "thinkingConfig": {"thinkingLevel": "HIGH"},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
    }
    out = generate_request_to_openai(body)
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "properties": {"n": {"type": ["integer", "null"]}},
                },
            },
        },
        {
            "type": "function",
            "function": {"name": "g", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "g"}}
    assert (out["temperature"], out["top_p"], out["seed"], out["stop"]) == (0.2, 0.9, 7, ["x"])
    assert "top_k" not in out and "topK" not in out
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert out["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    ("budget", "effort"), [(0, "none"), (512, "low"), (4096, "medium"), (24576, "high"), (-1, None)]
)
def test_a_thinking_budget_becomes_an_effort(budget, effort):
    body = {"contents": [HI], "generationConfig": {"thinkingConfig": {"thinkingBudget": budget}}}
    assert generate_request_to_openai(body).get("reasoning_effort") == effort


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"contents": [HI], "cachedContent": "cachedContents/a"}, "cachedContent"),
        ({"contents": [HI], "tools": [{"googleSearch": {}}]}, "googleSearch"),
        ({"contents": [HI], "generationConfig": {"candidateCount": 2}}, "candidateCount"),
        (
            {"contents": [HI], "generationConfig": {"responseModalities": ["AUDIO"]}},
            "responseModalities",
        ),
        (
            {"contents": [HI], "generationConfig": {"responseMimeType": "text/x.enum"}},
            "responseMimeType",
        ),
        ({"contents": [user({"inlineData": {"mimeType": "video/mp4", "data": "A"}})]}, "video/mp4"),
        ({"contents": [user({"fileData": {"mimeType": "video/mp4", "fileUri": "u"}})]}, "fileData"),
        (
            {"contents": [user({"executableCode": {"language": "PYTHON", "code": "1"}})]},
            "executableCode",
        ),
        (
            {"contents": [user({"functionResponse": {"name": "f", "response": {}}})]},
            "no earlier functionCall",
        ),
    ],
)
def test_what_no_other_provider_can_take_is_refused(body, says):
    with pytest.raises(InvalidRequest, match=says):
        generate_request_to_openai(body)


@pytest.mark.parametrize("uri", ["gs://bucket/cat.png", "files/abc123"])
def test_a_file_only_gemini_can_fetch_is_refused_naming_its_part(uri):
    body = {"contents": [HI, user({"fileData": {"mimeType": "image/png", "fileUri": uri}})]}
    with pytest.raises(InvalidRequest, match="only Gemini models read") as refused:
        generate_request_to_openai(body)
    assert refused.value.param == "contents[1].parts[0].fileData.fileUri"


def test_a_gemini_schema_becomes_json_schema():
    schema = {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING", "enum": ["x"], "format": "enum"}},
        "required": ["a"],
        "nullable": True,
    }
    assert json_schema(schema) == {
        "type": ["object", "null"],
        "properties": {"a": {"type": "string", "enum": ["x"], "format": "enum"}},
        "required": ["a"],
    }


# --- answers and streams, translated back --------------------------------------------------


def test_a_completion_becomes_a_generate_content_response_with_thoughts_apart():
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "tool_calls": [
                        {
                            "id": "c9",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 30,
            "total_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
    }
    assert completion_to_generate(completion, "gpt-5-4") == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Hi"},
                        {"functionCall": {"id": "c9", "name": "f", "args": {"a": 1}}},
                    ],
                },
                "finishReason": "MAX_TOKENS",
                "index": 0,
            }
        ],
        "modelVersion": "gpt-5-4",
        "responseId": "chatcmpl-1",
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 10,
            "totalTokenCount": 40,
            "thoughtsTokenCount": 20,
            "cachedContentTokenCount": 4,
        },
    }
    broken = {
        "choices": [
            {
                "message": {
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]
                }
            }
        ]
    }
    with pytest.raises(UpstreamMalformed):
        completion_to_generate(broken, "gpt-5-4")


def test_chunks_become_events_with_tool_calls_whole_and_usage_last():
    translator = ChunksToGenerate("gpt-5-4")
    chunks = [
        {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "llo"}}]},
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "k", "function": {"name": "f", "arguments": '{"a"'}}
                        ]
                    },
                }
            ],
        },
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":2}"}}]},
                }
            ],
        },
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    ]
    events = [event for chunk in chunks for event in translator.feed(chunk)] + translator.finish()
    texts = [e["candidates"][0]["content"]["parts"] for e in events]
    assert texts == [
        [{"text": "He"}],
        [{"text": "llo"}],
        [{"functionCall": {"id": "k", "name": "f", "args": {"a": 2}}}],
    ]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 4,
        "totalTokenCount": 7,
    }
    assert {e["responseId"] for e in events} == {"c"}


def test_a_stream_without_alt_sse_is_framed_as_one_json_array():
    frames = gemini.Frames(sse=False)
    assert (
        frames.frame({"a": 1}) + frames.frame({"b": 2}) + frames.close() == b'[{"a":1},\r\n{"b":2}]'
    )
    assert gemini.Frames(sse=False).close() == b"[]"
    broken = gemini.Frames(sse=False)
    broken.frame({"a": 1})
    assert broken.error(UpstreamError(500, "boom")).endswith(
        b'"status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_ERROR","domain":"bytespike","metadata":{"type":"api_error"}}]}}]'
    )
    assert gemini.Frames(sse=True).frame({"a": 1}) == b'data: {"a":1}\r\n\r\n'


def test_errors_come_in_googles_status_envelope():
    body = gemini_errors.body(InsufficientBalance("no money"))
    assert body["error"]["code"] == 402 and body["error"]["status"] == "FAILED_PRECONDITION"
    assert body["error"]["details"][0]["reason"] == "INSUFFICIENT_BALANCE"
    refused = gemini_errors.body(InvalidRequest("bad", param="contents"))["error"]
    assert (refused["status"], refused["details"][0]["metadata"]["param"]) == (
        "INVALID_ARGUMENT",
        "contents",
    )


# --- embeddings ----------------------------------------------------------------------------


def test_an_openai_embeddings_request_becomes_one_gemini_request_per_input():
    body = {"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 8}
    assert gemini_embed.batch_request(body) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 8,
            }
            for t in ("a", "b")
        ]
    }
    with pytest.raises(InvalidRequest, match="token arrays"):
        gemini_embed.batch_request({"model": "m", "input": [1, 2, 3]})


def test_geminis_vectors_and_usage_come_back_in_openais_shape():
    raw = b'{"embeddings": [{"values": [0.5, 1]}], "usageMetadata": {"promptTokenCount": 3}}'
    assert gemini_embed.openai_response(raw, model="m", count=1) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 1]}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    assert "usage" not in gemini_embed.openai_response(
        b'{"embeddings": [{"values": []}]}', model="m", count=1
    )
    with pytest.raises(UpstreamMalformed):
        gemini_embed.openai_response(b'{"embeddings": [{"values": [1]}]}', model="m", count=2)
    with pytest.raises(UpstreamMalformed):
        gemini_embed.openai_response(b'{"embeddings": [{"values": "AAAA"}]}', model="m", count=1)


def test_inputs_estimates_and_base64():
    assert embeddings.inputs({"input": "a"}) == ["a"]
    assert embeddings.inputs({"input": [1, 2]}) == [[1, 2]]
    assert embeddings.inputs({"input": [[1], [2, 3]]}) == [[1], [2, 3]]
    assert embeddings.estimate(["abcde", [1, 2, 3], "é"]).input_tokens == 2 + 3 + 1
    encoded = embeddings.to_base64([0.5, -2.0])
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, -2.0)
    assert embeddings.from_base64(encoded) == [0.5, -2.0]
