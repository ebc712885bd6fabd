"""`role: "system"` items inside an Anthropic Messages request's `messages`.

Claude Code sends them (mid-conversation system turns, under a beta header); the public
Messages reference has system text only in the top-level `system`. Each provider gets
them where it takes system text: an Anthropic upstream in the top-level `system` (here,
`hoisted`), OpenAI-shaped ones as a system message where it stood
(messages_request.py), Gemini in its systemInstruction (from those system messages).

Pure functions. Failure policy: a system item holding anything but text is InvalidRequest
naming it, before any upstream call.
"""

from __future__ import annotations

from typing import Any

from bytespike.errors import InvalidRequest
from bytespike.upstream.base import JSONObject


def is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "system"


def text_blocks(content: Any, where: str) -> list[JSONObject]:
    """A system item's content as text blocks (their cache_control kept)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        for i, block in enumerate(content):
            if not (isinstance(block, dict) and block.get("type") == "text"):
                raise InvalidRequest(
                    f"{where}.content.{i}: a system message may hold only text blocks",
                    param=f"{where}.content.{i}",
                )
        return [dict(block) for block in content if block.get("text")]
    raise InvalidRequest(f"{where}.content: must be a string or a list of text blocks")


def hoisted(body: JSONObject) -> JSONObject:
    """`body` with its system items moved, in order, after the top-level `system` (the body
    itself when it has none). Anthropic combines the user turns this may leave adjacent."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(is_system(m) for m in messages):
        return body
    blocks = _top_level(body.get("system"))
    turns = []
    for index, message in enumerate(messages):
        if is_system(message):
            blocks += text_blocks(message.get("content"), f"messages.{index}")
        else:
            turns.append(message)
    if not turns:
        raise InvalidRequest("messages: at least one user or assistant message is required")
    out = {**body, "messages": turns}
    if blocks:
        out["system"] = blocks
    return out


def _top_level(system: Any) -> list[JSONObject]:
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return list(system) if isinstance(system, list) else []
