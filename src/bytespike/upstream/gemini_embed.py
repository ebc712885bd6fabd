"""OpenAI embeddings request → Gemini `batchEmbedContents` request, and its answer back
(https://ai.google.dev/api/embeddings), for GeminiProvider.

Pure functions. Failure policy: token arrays, which Gemini cannot take, are InvalidRequest
before any upstream call; an answer without one `values` list of numbers per input is
`UpstreamMalformed`. Gemini may report no usage for embeddings: the answer then carries
none, and the proxy estimates it (upstream/embeddings.py).
"""

from __future__ import annotations

from bytespike.errors import InvalidRequest
from bytespike.upstream import embeddings, transport
from bytespike.upstream.base import JSONObject, UpstreamMalformed, tokens


def resource(model: str) -> str:
    """Gemini's resource name of a model ("models/gemini-embedding-001")."""
    return model if model.startswith("models/") else f"models/{model}"


def batch_request(body: JSONObject) -> JSONObject:
    """The batchEmbedContents body for an OpenAI embeddings request: one request per input."""
    model = resource(str(body.get("model", "")))
    requests = []
    for text in embeddings.inputs(body):
        if not isinstance(text, str):
            raise InvalidRequest("input: Gemini models embed text, not token arrays", param="input")
        request: JSONObject = {"model": model, "content": {"parts": [{"text": text}]}}
        if body.get("dimensions") is not None:
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}


def values(answer: JSONObject, *, count: int) -> list[list[float]]:
    """The vectors of a (batch)EmbedContentResponse, checked to be `count` lists of numbers."""
    found = answer.get("embeddings")
    if found is None and isinstance(answer.get("embedding"), dict):
        found = [answer["embedding"]]  # embedContent's single vector
    if not isinstance(found, list) or len(found) != count:
        raise UpstreamMalformed("Gemini's answer does not carry one embedding per input")
    vectors: list[list[float]] = []
    for item in found:
        vector = item.get("values") if isinstance(item, dict) else None
        if not embeddings.is_vector(vector):
            raise UpstreamMalformed("Gemini's answer carries an embedding that is not one")
        vectors.append(vector)
    return vectors


def prompt_tokens(answer: JSONObject) -> int | None:
    """Input tokens a Gemini embeddings answer reports (`usageMetadata`), if any."""
    metadata = answer.get("usageMetadata")
    if not isinstance(metadata, dict) or metadata.get("promptTokenCount") is None:
        return None
    return tokens(metadata, "promptTokenCount")


def openai_response(raw: bytes, *, model: str, count: int) -> JSONObject:
    """The CreateEmbeddingResponse for Gemini's batchEmbedContents answer."""
    answer = transport.json_object(raw, "Gemini's answer")
    data = [
        {"object": "embedding", "index": i, "embedding": vector}
        for i, vector in enumerate(values(answer, count=count))
    ]
    out: JSONObject = {"object": "list", "data": data, "model": model}
    used = prompt_tokens(answer)
    if used is not None:
        out["usage"] = {"prompt_tokens": used, "total_tokens": used}
    return out
