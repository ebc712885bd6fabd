"""Pure parts of Anthropic completeness: system items inside `messages`, thinking and effort
as reasoning_effort, reasoning back as thinking blocks, Anthropic's models pages and
rate-limit headers, and which request ids are kept."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import QueryParams

from bytespike import request_ids
from bytespike.catalog import load
from bytespike.errors import InvalidRequest
from bytespike.proxy import anthropic_models
from bytespike.ratelimit.base import Decision, decide
from bytespike.translate.anthropic import (
    OpenAIStreamToMessages,
    messages_request_to_openai,
    openai_to_message,
)
from bytespike.translate.messages_request import reasoning_effort, shows_thinking
from bytespike.translate.messages_system import hoisted

HI = {"role": "user", "content": "Hi"}
FRENCH = {"role": "system", "content": [{"type": "text", "text": "French.", "cache_control": {}}]}


# --- system items ------------------------------------------------------------------------


def test_a_body_without_system_items_goes_to_anthropic_as_it_is() -> None:
    body = {"model": "m", "system": "Be brief.", "messages": [HI]}
    assert hoisted(body) is body


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, []),
        ("Be brief.", [{"type": "text", "text": "Be brief."}]),
        ([{"type": "text", "text": "Be brief."}], [{"type": "text", "text": "Be brief."}]),
    ],
)
def test_system_items_follow_the_top_level_system_in_order_their_cache_marks_kept(
    system: Any, expected: list[dict[str, Any]]
) -> None:
    second = {"role": "system", "content": "Short."}
    body = {"model": "m", "system": system, "messages": [HI, FRENCH, {**HI}, second]}
    out = hoisted(body)
    assert out["messages"] == [HI, HI]
    assert out["system"] == [
        *expected,
        {"type": "text", "text": "French.", "cache_control": {}},
        {"type": "text", "text": "Short."},
    ]
    assert body["messages"] == [HI, FRENCH, HI, second]  # the client's body is left alone


def test_system_items_alone_are_not_a_conversation() -> None:
    with pytest.raises(InvalidRequest, match="at least one user or assistant"):
        hoisted({"messages": [FRENCH]})


def test_a_system_item_holding_an_image_is_refused_by_name() -> None:
    item = {"role": "system", "content": [{"type": "image", "source": {}}]}
    with pytest.raises(InvalidRequest) as refused:
        hoisted({"messages": [HI, item]})
    assert refused.value.param == "messages.1.content.0"


def test_system_items_become_system_messages_where_they_stand() -> None:
    empty = {"role": "system", "content": ""}
    body = {"model": "m", "messages": [HI, FRENCH, empty, {"role": "assistant", "content": "Oui"}]}
    assert messages_request_to_openai(body)["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "French."},
        {"role": "assistant", "content": "Oui"},
    ]


# --- thinking and effort -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "effort"),
    [
        ({}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"thinking": {"type": "adaptive"}}, None),
        ({"thinking": {"type": "enabled"}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4095}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16_383}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16_384}}, "high"),
        ({"output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "xhigh"}}, "xhigh"),
        ({"output_config": {"effort": "max"}}, "xhigh"),
        ({"output_config": {}, "thinking": {"type": "enabled", "budget_tokens": 2000}}, "low"),
        # The effort named wins over the one a budget implies.
        (
            {
                "output_config": {"effort": "high"},
                "thinking": {"type": "enabled", "budget_tokens": 2000},
            },
            "high",
        ),
    ],
)
def test_thinking_and_effort_as_reasoning_effort(body: dict[str, Any], effort: str | None) -> None:
    assert reasoning_effort(body) == effort
    translated = messages_request_to_openai({"model": "m", "messages": [HI], **body})
    assert translated.get("reasoning_effort") == effort


@pytest.mark.parametrize(
    ("thinking", "shown"),
    [
        (None, False),
        ({"type": "disabled"}, False),
        ({"type": "enabled", "budget_tokens": 2000}, True),
        ({"type": "adaptive"}, True),
        ({"type": "adaptive", "display": "summarized"}, True),
        ({"type": "adaptive", "display": "omitted"}, False),
    ],
)
def test_thinking_is_shown_only_when_asked_for(thinking: Any, shown: bool) -> None:
    assert shows_thinking({"thinking": thinking}) is shown


def completion(message: dict[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return {"id": "chatcmpl-1", "choices": [choice], "usage": usage}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reported_reasoning_leads_the_message_as_a_thinking_block(field: str) -> None:
    answer = completion({"role": "assistant", "content": "Paris.", field: "Capital of France"})
    shown = openai_to_message(answer, "m", thinking=True)
    assert shown["content"] == [
        {"type": "thinking", "thinking": "Capital of France", "signature": ""},
        {"type": "text", "text": "Paris."},
    ]
    hidden = openai_to_message(answer, "m")
    assert hidden["content"] == [{"type": "text", "text": "Paris."}]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize("thinking", [True, False])
def test_streamed_reasoning_is_a_thinking_block_before_the_text(thinking: bool) -> None:
    translator = OpenAIStreamToMessages("m", "msg_1", thinking=thinking)
    events = []
    for delta in (
        {"role": "assistant", "reasoning_content": "Hmm, "},
        {"reasoning_content": "France."},
        {"content": "Paris."},
    ):
        events += translator.feed(chunk(delta))
    events += translator.feed(chunk({}, "stop"))
    events += translator.finish()
    blocks = [
        data["content_block"]["type"] for name, data in events if name == "content_block_start"
    ]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    if thinking:
        assert blocks == ["thinking", "text"]
        assert deltas == [
            {"type": "thinking_delta", "thinking": "Hmm, "},
            {"type": "thinking_delta", "thinking": "France."},
            {"type": "text_delta", "text": "Paris."},
        ]
        stops = [data["index"] for name, data in events if name == "content_block_stop"]
        assert stops == [0, 1]
    else:
        assert blocks == ["text"] and deltas == [{"type": "text_delta", "text": "Paris."}]


# --- models pages, rate-limit headers, request ids -----------------------------------------


MODELS = load().models[:4]
IDS = [m.id for m in MODELS]


@pytest.mark.parametrize(
    ("query", "ids", "more"),
    [
        ("", IDS, False),
        ("limit=3", IDS[:3], True),
        (f"limit=2&after_id={IDS[1]}", IDS[2:4], False),
        (f"after_id={IDS[3]}", [], False),
        (f"limit=2&before_id={IDS[3]}", IDS[1:3], True),
        (f"before_id={IDS[1]}", IDS[:1], False),
        (f"before_id={IDS[0]}", [], False),
    ],
)
def test_anthropic_model_pages(query: str, ids: list[str], more: bool) -> None:
    page = anthropic_models.page(MODELS, QueryParams(query), 0)
    assert [m["id"] for m in page["data"]] == ids and page["has_more"] is more
    assert (page["first_id"], page["last_id"]) == ((ids[0], ids[-1]) if ids else (None, None))
    assert all(
        m["type"] == "model" and m["created_at"] == "1970-01-01T00:00:00Z" for m in page["data"]
    )


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=²",
        "after_id=nope",
        f"after_id={IDS[0]}&before_id={IDS[1]}",
    ],
)
def test_anthropic_model_pages_refuse_what_names_no_page(query: str) -> None:
    with pytest.raises(InvalidRequest):
        anthropic_models.page(MODELS, QueryParams(query), 0)


def test_anthropics_rate_limit_headers_name_the_end_of_the_window() -> None:
    decision = decide(3, 10, 1_767_225_600 + 42.5)  # 2026-01-01T00:00:42.5Z
    assert decision.anthropic_headers() == {
        "anthropic-ratelimit-requests-limit": "10",
        "anthropic-ratelimit-requests-remaining": "7",
        "anthropic-ratelimit-requests-reset": "2026-01-01T00:01:00Z",
    }
    assert Decision(True, 1, 0, 5).headers()["x-ratelimit-reset-requests"] == "5s"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req_0123", True),
        ("a.b:c-d_e", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        (None, False),
        ("two words", False),
        ("<script>", False),
        ("é", False),
    ],
)
def test_a_client_request_id_is_kept_only_when_it_looks_like_one(
    given: str | None, kept: bool
) -> None:
    made = request_ids.accepted(given)
    assert (made == given) is kept
    if not kept:
        assert made.startswith("req_") and made != request_ids.accepted(given)
