"""Embeddings as an upstream capability, in OpenAI's shape (the lingua franca, as Chat
Completions is for chat): a provider with an embeddings API takes a `CreateEmbeddingRequest`
body (`model` already the upstream's name) and answers a `CreateEmbeddingResponse`.

Implementations: upstream/openai.py (OpenAI and every compatible server, as sent) and
upstream/gemini.py (through `batchEmbedContents`, upstream/gemini_embed.py).

Failure policy: as for chat (upstream/base.py). `prepare_embeddings` raises InvalidRequest
for what the provider cannot take, before any hold; `embed` fails only with an
UpstreamFailure; an answer that is not a CreateEmbeddingResponse (no `data` list, a vector
that is neither a list of numbers nor base64 text, fewer vectors than inputs) is
`UpstreamMalformed`. An answer without usage is not a failure: `estimate` bills it.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any, Protocol, TypeGuard, runtime_checkable

from bytespike.upstream import transport
from bytespike.upstream.base import JSONObject, Prepared, UpstreamMalformed, Usage, tokens

ANSWER = "the upstream's embeddings"  # how malformed answers are named to clients


@runtime_checkable
class Embeddings(Protocol):
    """Optional capability: the provider has an embeddings API."""

    def prepare_embeddings(self, body: JSONObject) -> Prepared:
        """The provider's request for an OpenAI embeddings request body (`limit_at` is
        empty: an embedding has no output to limit)."""
        ...

    async def embed(self, request: Prepared) -> JSONObject:
        """The OpenAI `CreateEmbeddingResponse` (float vectors unless the request asked an
        OpenAI upstream for base64), with `usage` if the upstream reported it."""
        ...


Input = str | list[int]  # a text, or a text already tokenized


def inputs(body: JSONObject) -> list[Input]:
    """The request's `input` as a list of inputs (a string or a token array is one)."""
    value = body.get("input")
    if isinstance(value, str) or (value and all(isinstance(v, int) for v in value)):
        return [value]
    return list(value or ())


def estimate(items: list[Input]) -> Usage:
    """The input tokens of an answer that reported none: a token per four UTF-8 bytes of
    each text, rounded up (the gateway's estimate everywhere, tokenizers average about
    that), and a token per element of a token array."""
    count = sum(len(i) if isinstance(i, list) else math.ceil(len(i.encode()) / 4) for i in items)
    return Usage(input_tokens=count, output_tokens=0)


def usage_of(answer: JSONObject) -> Usage | None:
    """The usage an OpenAI embeddings answer reports, if it reports any."""
    usage = answer.get("usage")
    if not isinstance(usage, dict) or usage.get("prompt_tokens") is None:
        return None
    return Usage(input_tokens=tokens(usage, "prompt_tokens"), output_tokens=0)


def openai_usage(usage: Usage) -> JSONObject:
    return {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}


def response(raw: bytes, *, count: int) -> JSONObject:
    """A CreateEmbeddingResponse from an upstream's 2xx body, checked to carry `count`
    vectors, with what compatible servers leave out filled in."""
    body = transport.json_object(raw, ANSWER)
    return checked(body, count=count)


def checked(body: JSONObject, *, count: int) -> JSONObject:
    data = body.get("data")
    if not isinstance(data, list) or len(data) != count:
        raise UpstreamMalformed(f"{ANSWER} do not carry one vector per input")
    for index, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, str) and not is_vector(vector):
            raise UpstreamMalformed(f"{ANSWER} carry a vector that is not one")
        item.setdefault("index", index)
        item["object"] = "embedding"
    body["object"] = "list"
    return body


def is_vector(vector: Any) -> TypeGuard[list[float]]:
    """A list of numbers."""
    return isinstance(vector, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in vector
    )


def to_base64(vector: list[float]) -> str:
    """A vector as OpenAI sends it for `encoding_format: "base64"`: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def from_base64(text: str) -> list[float]:
    """The floats of a base64 vector (for clients that asked for floats)."""
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))
