"""POST /v1beta/models/{model}:countTokens (the same under /v1/): Gemini's token count, for
any model on the key's roster.

Free: no hold, no ledger entry, no usage record. Still a key's call like any other: counted
against its rate limit (429), refused for a paused org (403), its model checked against the
key's roster, its body against Gemini's `CountTokensRequest` (`contents`, or a whole
`generateContentRequest`).

Who counts: a provider that speaks Gemini itself (NativeGemini) counts, and its answer
(`totalTokens`, ...) is passed on. For every other provider the answer is the gateway's
estimate, `{"totalTokens": N}` with N a quarter of the input bound a generateContent call
of those contents would hold (proxy/gemini.py), about four bytes of the request per token,
as the estimates everywhere else. It is not what a call will be billed: that is the usage
its provider reports.

Failure policy: nothing is spent, so nothing is released; a provider's failure is the
client's answer in Gemini's envelope (statuses as on generateContent), as is a bug (500).
"""

from __future__ import annotations

import logging
import math

from starlette.requests import Request
from starlette.responses import Response

from bytespike.api.responses import JSON
from bytespike.errors import BytespikeError, InternalError, InvalidRequest
from bytespike.proxy import gemini, gemini_errors, gemini_schema, pipeline, validation
from bytespike.proxy.pipeline import Gateway
from bytespike.upstream.base import JSONObject, UpstreamFailure
from bytespike.upstream.gemini import NativeGemini
from bytespike.upstream.gemini_embed import resource

log = logging.getLogger(__name__)


async def count_tokens(gw: Gateway, request: Request, model_id: str) -> Response:
    """Gemini's CountTokensResponse, or a refusal in Gemini's envelope; with the rate-limit
    headers once the key has been counted."""
    try:
        return await _count(gw, request, model_id)
    except (BytespikeError, UpstreamFailure) as refusal:
        return gemini_errors.response(refusal, _rate_headers(request))
    except Exception:
        log.exception("token count failed", extra={"path": request.url.path})
        bug = InternalError("internal error; it has been logged")
        return gemini_errors.response(bug, _rate_headers(request))


async def _count(gw: Gateway, request: Request, model_id: str) -> Response:
    key = await pipeline.admit(gw, request)  # 401 → 429 → 403, before the body is read
    body = await pipeline.read_body(gw, request)  # 413, 408, 400
    model = pipeline.route(gw, key, model_id)  # 404, 403
    pipeline.checked_bound(body)  # 400 for a body nested past any request's depth
    body = gemini_schema.camel_case(body)
    validation.check(gemini_schema.CountTokensRequest, body, validation.openai_param)
    inner = body.get("generateContentRequest")
    if (inner is None) == (body.get("contents") is None):
        raise InvalidRequest("give either contents or generateContentRequest, not both")
    provider = gw.providers.for_model(model)
    if isinstance(provider, NativeGemini):
        upstream = resource(model.upstream_model)
        if inner is not None:
            body = {**body, "generateContentRequest": {**inner, "model": upstream}}
        answer = await provider.call(model.upstream_model, "countTokens", body)
    else:
        answer = {"totalTokens": _estimate(inner or {"contents": body["contents"]})}
    return JSON(answer, headers=_rate_headers(request))


def _estimate(request: JSONObject) -> int:
    spec = gemini.FORMAT.parse(request)  # checked as a generateContent body
    return math.ceil(spec.input_tokens / 4)


def _rate_headers(request: Request) -> dict[str, str] | None:
    headers: dict[str, str] | None = request.scope.get("state", {}).get("rate_headers")
    return headers
