"""The router's own refusals (no such path, not that method) on a model API's paths come in
that API's error envelope, which its SDK parses; elsewhere in the generic one."""

from __future__ import annotations

import httpx
import pytest


async def test_a_gemini_path_without_a_method_is_refused_in_gemini_s_envelope(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/v1beta/models/gemini-3-1-pro", json={"contents": []})
    assert answer.status_code == 405
    error = answer.json()["error"]
    assert error["code"] == 405 and error["status"] == "UNIMPLEMENTED"
    assert error["message"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_a_wrong_method_on_anthropic_s_paths_is_refused_in_anthropic_s_envelope(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 405
    assert "POST" in answer.headers["allow"]
    body = answer.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "type_"),
    [
        ("GET", "/v1/chat/completions", 405, "invalid_request_error"),
        ("POST", "/v1/no-such-endpoint", 404, "not_found_error"),
    ],
)
async def test_the_router_s_refusals_under_v1_come_in_openai_s_envelope(
    client: httpx.AsyncClient, method: str, path: str, status: int, type_: str
) -> None:
    answer = await client.request(method, path)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["type"] == type_ and error["message"]
    assert "param" in error and "code" in error  # OpenAI's four fields


async def test_the_router_s_refusals_elsewhere_keep_the_generic_envelope(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"type": "not_found_error", "message": "Not Found"}}
