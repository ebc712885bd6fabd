"""POST /v1/messages/count_tokens: Anthropic's token count, for any model on the key's roster.

Free: no hold, no ledger entry, no usage record. Still a key's call like any other: counted
against its rate limit (429), refused for a paused org (403), and checked as /v1/messages
checks it (the model on the key's roster, every field against the Messages reference).

Who counts: a provider that counts Messages requests itself (the CountsMessageTokens
capability: Anthropic) gets the request, system items moved as /v1/messages moves them;
its count is the answer. For every other provider it is the gateway's estimate: a quarter
of the input bound the hold uses (billing/pricing.py), about four bytes of the request per
token, as estimate.py guesses an input no upstream reported. It is not what the call will
be billed: that is the usage its provider reports.

Failure policy: nothing is spent, so nothing is released; a provider's failure is the
client's answer in Anthropic's envelope (statuses as on /v1/messages), as is a bug (500).
"""

from __future__ import annotations

import logging
import math

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.responses import JSON
from bytespike.catalog import Model
from bytespike.errors import BytespikeError, InternalError
from bytespike.proxy import errors, messages, pipeline
from bytespike.proxy.pipeline import Gateway
from bytespike.translate import messages_system
from bytespike.upstream.base import CountsMessageTokens, JSONObject, UpstreamFailure

log = logging.getLogger(__name__)

# Generation settings that change nothing in the input; Anthropic's count refuses them.
_NOT_COUNTED = (
    "max_tokens", "stream", "metadata", "temperature", "top_p", "top_k", "stop_sequences",
    "service_tier",
)  # fmt: skip


async def count_tokens(gw: Gateway, request: Request) -> Response:
    """`{"input_tokens": N}`, or a refusal in Anthropic's envelope; with the rate-limit
    headers once the key has been counted."""
    try:
        response = await _count(gw, request)
    except (BytespikeError, UpstreamFailure) as refusal:
        response = errors.anthropic_response(refusal, _rate_headers(request))
    except Exception:
        log.exception("token count failed", extra={"path": request.url.path})
        bug = InternalError("internal error; it has been logged")
        response = errors.anthropic_response(bug, _rate_headers(request))
    return messages.anthropic_ratelimit(request, response)


async def _count(gw: Gateway, request: Request) -> Response:
    key = await pipeline.admit(gw, request)  # 401 → 429 → 403, before the body is read
    body = await pipeline.read_body(gw, request)  # 413, 408, 400
    model = pipeline.route(gw, key, body.get("model"))  # 400, 404, 403
    spec = messages.FORMAT.parse(body)  # 400 naming the field at fault
    provider = gw.providers.for_model(model)
    if isinstance(provider, CountsMessageTokens):
        beta = request.headers.get("anthropic-beta")
        tokens = await provider.count_message_tokens(_upstream(body, model), beta=beta)
    else:
        tokens = math.ceil(spec.input_tokens / 4)
    return JSON({"input_tokens": tokens}, headers=_rate_headers(request))


def _upstream(body: JSONObject, model: Model) -> JSONObject:
    counted = {k: v for k, v in messages_system.hoisted(body).items() if k not in _NOT_COUNTED}
    return {**counted, "model": model.upstream_model}


def _rate_headers(request: Request) -> dict[str, str] | None:
    headers: dict[str, str] | None = request.scope.get("state", {}).get("rate_headers")
    return headers
