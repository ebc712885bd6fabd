"""Which client API a request path belongs to: the one place that knows, for the answers the
router gives itself (api/errors.py: a 404 or 405 in that API's envelope) and for the
request-id headers (request_ids.py: Anthropic's SDKs read `request-id`)."""

from __future__ import annotations

from typing import Literal

ClientApi = Literal["gemini", "anthropic", "openai"]


def client_api(path: str) -> ClientApi | None:
    """Gemini's under /v1beta/ and for /v1/models/{model}:{method}, Anthropic's under
    /v1/messages, OpenAI's for the rest of /v1/; None for the gateway's own paths."""
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
        return "gemini"
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "anthropic"
    if path.startswith("/v1/"):
        return "openai"
    return None
