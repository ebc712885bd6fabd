"""What makes two requests the same for an Idempotency-Key: the path, the query but for a
key in it, and the JSON body whatever its key order and whitespace."""

from __future__ import annotations

from starlette.requests import Request

from bytespike.idempotency.claims import fingerprint

GEMINI = "/v1beta/models/gemini-3-1-pro:streamGenerateContent"


def request(path: str = "/v1/chat/completions", query: bytes = b"") -> Request:
    scope = {"type": "http", "method": "POST", "path": path, "query_string": query, "headers": []}
    return Request(scope)


def test_two_serialisations_of_one_body_are_one_request() -> None:
    compact = b'{"model":"mock","messages":[{"role":"user","content":"Hi"}],"n":1}'
    spaced = b'{"n": 1,\n "messages": [{"content": "Hi", "role": "user"}], "model": "mock"}'
    assert fingerprint(request(), compact) == fingerprint(request(), spaced)


def test_another_value_path_or_query_is_another_request() -> None:
    body = b'{"model": "mock", "messages": [{"role": "user", "content": "Hi"}]}'
    other = b'{"model": "mock", "messages": [{"role": "user", "content": "Hi!"}]}'
    first = fingerprint(request(), body)
    assert fingerprint(request(), other) != first
    assert fingerprint(request("/v1/responses"), body) != first
    assert fingerprint(request(GEMINI, b"alt=sse"), body) != fingerprint(request(GEMINI), body)


def test_a_key_in_the_query_is_not_part_of_the_request() -> None:
    body = b'{"contents": [{"parts": [{"text": "Hi"}]}]}'
    with_key = fingerprint(request(GEMINI, b"alt=sse&key=old-secret"), body)
    assert with_key == fingerprint(request(GEMINI, b"key=new-secret&alt=sse"), body)
