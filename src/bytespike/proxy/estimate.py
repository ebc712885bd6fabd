"""Usage for a call the upstream never reported on: the client left mid-stream, or a server
that sends no usage. Reported input if any, else a quarter of the input bound; a token per
four bytes of output sent. Both are the gateway's guess, so it errs towards the client."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from bytespike.upstream.base import Usage


def output_bytes(part: dict[str, Any]) -> int:
    """UTF-8 bytes of what an OpenAI message or stream delta says: its text and tool
    arguments (the measure `usage` turns into output tokens)."""
    pieces = [part.get("content")]
    for call in part.get("tool_calls") or ():
        if isinstance(call, dict):
            pieces.append((call.get("function") or {}).get("arguments"))
    return sum(len(piece.encode()) for piece in pieces if isinstance(piece, str))


def usage(reported: Usage | None, input_bound: int, output_bytes: int) -> Usage:
    """Reported usage keeps every class it reported; only its output may grow."""
    output = math.ceil(output_bytes / 4)
    if reported is None:
        return Usage(input_tokens=math.ceil(input_bound / 4), output_tokens=output)
    return dataclasses.replace(reported, output_tokens=max(reported.output_tokens, output))
