"""Responses ↔ Chat Completions, the pure translations: requests out, answers and stream
chunks back, every Response and event valid against OpenAI's reference."""

from __future__ import annotations

from typing import Any

import pytest

from bytespike.errors import InvalidRequest
from bytespike.translate import responses_response as answer
from bytespike.translate.responses_request import ToolNames, to_chat
from bytespike.translate.responses_stream import ChatStreamToResponses
from bytespike.upstream.base import UpstreamMalformed
from bytespike.upstream.openai_responses import usage_from_responses
from tests.openai_schema import assert_valid

FUNCTION = {
    "type": "function",
    "name": "exec_command",
    "description": "Run a command",
    "strict": False,
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
}


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "Hi", **fields}


def shell(body: dict[str, Any]) -> dict[str, Any]:
    return answer.shell(body, response_id="resp_" + "0" * 48, model="m", created_at=1)


def test_a_conversation_becomes_chat_messages_with_tool_calls_in_one_turn() -> None:
    body = request(
        instructions="Be brief.",
        input=[
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "D"}]},
            {"role": "user", "content": "Weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Looking.", "annotations": []}]},
            {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "b", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "tw"}, {"type": "input_text", "text": "o"}]},
        ],
    )  # fmt: skip
    chat, _ = to_chat(body)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "D"}]},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Looking."}],
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_settings_map_to_their_chat_names_and_hosted_tools_are_left_out() -> None:
    body = request(
        max_output_tokens=100,
        temperature=0.5,
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}},
              "verbosity": "low"},
        tools=[FUNCTION, {"type": "web_search"},
               {"type": "namespace", "name": "ns", "description": "d", "tools": [FUNCTION]}],
        tool_choice="auto",
        parallel_tool_calls=False,
        store=True,
        include=["reasoning.encrypted_content"],
    )  # fmt: skip
    chat, names = to_chat(body)
    assert chat["max_completion_tokens"] == 100 and chat["temperature"] == 0.5
    assert chat["reasoning_effort"] == "low" and chat["verbosity"] == "low"
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}},
    }
    assert [t["function"]["name"] for t in chat["tools"]] == ["exec_command", "ns__exec_command"]
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is False
    assert "store" not in chat and "include" not in chat
    assert names.split("ns__exec_command") == ("ns", "exec_command")
    assert names.split("exec_command") == (None, "exec_command")


def test_only_hosted_tools_leave_no_tools_and_no_tool_choice() -> None:
    chat, _ = to_chat(request(tools=[{"type": "web_search"}], tool_choice="required"))
    assert "tools" not in chat and "tool_choice" not in chat


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type"),
        ({"input": [{"type": "custom_tool_call", "call_id": "c"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]},
            "input[0].content[0].type",
        ),
        ({"tool_choice": {"type": "custom", "name": "x"}, "tools": [FUNCTION]}, "tool_choice.type"),
    ],
)
def test_what_only_an_openai_model_reads_is_refused_naming_it(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        to_chat(request(**fields))
    assert refused.value.param == param
    assert refused.value.message.startswith(param)


def completion(message: dict[str, Any], finish: str, **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, **usage},
    }


def test_a_completion_becomes_a_valid_response() -> None:
    body = request(tools=[FUNCTION], store=False, metadata={"a": "b"})
    message = {
        "role": "assistant",
        "content": "Running it.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "exec_command", "arguments": "{}"},
            }
        ],
    }
    usage = {"completion_tokens_details": {"reasoning_tokens": 2}}
    response = answer.from_completion(
        completion(message, "tool_calls", **usage), shell(body), ToolNames()
    )
    assert_valid("Response", response)
    assert response["status"] == "completed" and response["store"] is False
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["call_id"] == "c1"
    assert response["usage"]["output_tokens"] == 5  # reasoning is inside, not added
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}
    assert response["tools"][0]["strict"] is False


def test_an_answer_cut_at_the_limit_is_incomplete() -> None:
    message = {"role": "assistant", "content": "One two"}
    response = answer.from_completion(completion(message, "length"), shell(request()), ToolNames())
    assert_valid("Response", response)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_a_chat_stream_becomes_the_responses_event_sequence() -> None:
    names = ToolNames()
    names.chat_name("ns", "spawn")
    translator = ChatStreamToResponses(shell(request()), names)
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "ns__spawn"}}
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "see."}),
        chunk({"tool_calls": [{**call, "function": {**call["function"], "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}},
    ]
    events = [event for c in chunks for event in translator.feed(c)] + translator.finish()
    for event in events:
        assert_valid("ResponseStreamEvent", event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Let me see."
    assert final["output"][1]["arguments"] == '{"a": 1}'
    assert (final["output"][1]["name"], final["output"][1]["namespace"]) == ("spawn", "ns")
    assert final["usage"]["input_tokens"] == 7 and final["usage"]["total_tokens"] == 10
    assert translator.response == final


def test_a_stream_cut_at_the_limit_ends_incomplete() -> None:
    translator = ChatStreamToResponses(shell(request()), ToolNames())
    events = translator.feed(chunk({"content": "One"})) + translator.feed(chunk({}, "length"))
    events += translator.finish()
    assert events[-1]["type"] == "response.incomplete"
    assert events[-2]["item"]["status"] == "incomplete"
    for event in events:
        assert_valid("ResponseStreamEvent", event)


def test_a_tool_call_resumed_after_another_item_is_malformed() -> None:
    translator = ChatStreamToResponses(shell(request()), ToolNames())
    call = {"index": 0, "id": "c1", "function": {"name": "a", "arguments": "{"}}
    translator.feed(chunk({"tool_calls": [call]}))
    translator.feed(chunk({"tool_calls": [{**call, "index": 1, "id": "c2"}]}))
    with pytest.raises(UpstreamMalformed):
        translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))


def test_responses_usage_counts_reasoning_once() -> None:
    usage = usage_from_responses(
        {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 40},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 20},
            "total_tokens": 130,
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (100, 30, 40)
    with pytest.raises(UpstreamMalformed):
        usage_from_responses({"input_tokens": "many"})
