"""GET /v1/models and /v1/models/{id} in Anthropic's shape, for requests that carry an
`anthropic-version` header (every anthropic SDK sends one; OpenAI's never do).

Anthropic's ModelInfo: `type: "model"`, `id`, `display_name`, `created_at` (RFC 3339), plus
its optional limits; a list is one page, `has_more`, `first_id` and `last_id`, paged by
`after_id` / `before_id` and `limit` (1-1,000, default 20). The catalog has neither
release dates nor display names: every model shows the fixed date OpenAI's shape shows,
and its id as its name. Pages follow the catalog's order, as the OpenAI list does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request

from bytespike.catalog import Model
from bytespike.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def wanted(request: Request) -> bool:
    return "anthropic-version" in request.headers


def entry(model: Model, created: int) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.id,
        "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lifecycle": "active",
        "max_input_tokens": model.context_tokens,
        "max_tokens": model.max_output_tokens,
    }


def page(models: list[Model], params: QueryParams, created: int) -> dict[str, Any]:
    """One page of `models`, or 400 for a limit out of range or a cursor naming no model of
    the list (both cursors at once, too)."""
    limit = _limit(params.get("limit"))
    after, before = params.get("after_id"), params.get("before_id")
    if after is not None and before is not None:
        raise InvalidRequest("after_id and before_id: give one cursor, not both")
    ids = [m.id for m in models]
    if before is not None:
        end = _position(ids, before, "before_id")
        start = max(0, end - limit)
        more = start > 0
    else:
        start = 0 if after is None else _position(ids, after, "after_id") + 1
        end = min(len(ids), start + limit)
        more = end < len(ids)
    data = [entry(m, created) for m in models[start:end]]
    return {
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _position(ids: list[str], cursor: str, name: str) -> int:
    if cursor not in ids:
        raise InvalidRequest(f"{name}: {cursor[:200]!r} is not a model of this list")
    return ids.index(cursor)
