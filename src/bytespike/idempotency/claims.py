"""Idempotency keys on metered calls. A request with an `Idempotency-Key` header claims the
key, for its API key, before its hold; a retry (same API key, same Idempotency-Key, same
request) gets the first answer again, billed once; another request under the same key gets
422; a retry while the first is still running, 409.

The claim is one row, inserted only if absent (repo.claim), in a write of its own before
the hold: of any number of concurrent requests with one key, on one server or several,
exactly one inserts it and goes on to be billed; each other one finds the row. How the
claimed call ends decides what the row keeps (`Taken.finish`): a call that was billed
(settled with usage) keeps its answer as sent for RETENTION, or, when there is none to keep
(past answers.MAX_BYTES, or a failure after the bill), is marked spent (409 to its
retries); a call billed nothing (refused at its hold, refused by the upstream without usage,
failed) gives the key back, so a retry runs anew. A whole answer is kept as it leaves; a
stream's is copied as it leaves and kept when it settles, once it has ended.

Failure policy: claiming fails closed (the database's error, a 503: no claim, no call).
Finishing runs after the settlement and never changes the answer: if it fails, that is
logged and the row stays `running` until its TTL, a hold's, as the row of a server that died
mid-call does; past it, a request may claim the key anew. So a call that outlives its claim
(as it outlives its hold) may run twice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bytespike.context import Context
from bytespike.db.batch import GroupCommit
from bytespike.errors import BytespikeError, Conflict, InvalidRequest
from bytespike.idempotency import answers, repo
from bytespike.idempotency.answers import Answer
from bytespike.keys.cache import CachedKey

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
RETENTION = timedelta(hours=24)
# A claim's insert meets a row that vanishes before it is read (its call gave it back): the
# claim is tried again, a few times, then the key is reported in use.
_ATTEMPTS = 3

log = logging.getLogger(__name__)


class KeyInUse(Conflict):
    """409: the first request with this key is still running. Retrying later is right (the
    SDKs retry a 409 by themselves)."""

    code = "idempotency_key_in_use"


class KeyReused(BytespikeError):
    """422: the key was used for a different request (another body, path or query)."""

    status = 422
    type = "invalid_request_error"
    code = "idempotency_key_reused"


class AnswerNotKept(Conflict):
    """409 that no retry will change: the first request was billed but left nothing to
    replay. `x-should-retry: false` stops the SDKs' own retries."""

    code = "idempotency_answer_not_kept"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"x-should-retry": "false"})


class Claim:
    """What idempotency does for a metered call: nothing, for a call without the header
    (this class, NONE); the first answer again when `replay` is set; for a call that claimed
    its key, `Taken`. Used as `async with claim:` around the hold and the call."""

    def __init__(self, replay: Response | None = None) -> None:
        self.replay = replay

    async def settled(self, *, billed: bool) -> None:
        """The call has settled; `billed`: with usage (charged), not released."""

    async def recorded(self, response: Response) -> Response:
        """`response`, its answer kept as it leaves."""
        return response

    async def __aenter__(self) -> Claim:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


NONE = Claim()


async def claim(
    ctx: Context, writes: GroupCommit, key: CachedKey, request: Request, body: bytes
) -> Claim:
    """The request's claim on its Idempotency-Key: NONE without one; 400 for a malformed
    key, 422 for a key used for another request, 409 while it runs (or when its answer was
    not kept); a replay of its answer."""
    given = request.headers.get(HEADER)
    if given is None:
        return NONE
    state = request.scope.get("state", {})
    now = ctx.clock.now()
    row = {
        "key_id": key.record.id,
        "idempotency_key": checked(given),
        "fingerprint": fingerprint(request, body),
        "token": secrets.token_hex(16),
        "state": "running",
        "request_id": state.get("request_id"),
        "created_at": now,
        "expires_at": now + ctx.hold_ttl,
    }

    async def take(conn: AsyncConnection) -> repo.Found | None:
        for _ in range(_ATTEMPTS):
            if await repo.claim(conn, row) or await repo.claim_expired(conn, row, now=now):
                return None
            found = await repo.get(conn, row["key_id"], row["idempotency_key"])
            if found is not None:
                return found
        return repo.Found(row["fingerprint"], "running", None, None, None, None)

    found = await writes.run(take, order=key.wallet_id)
    if found is None:
        return Taken(writes, key, row)
    return Claim(replay=_replay(found, row["fingerprint"], state.get("rate_headers") or {}))


def checked(given: str) -> str:
    """The header's key, or 400: 1 to MAX_KEY_CHARS printable ASCII characters."""
    if not (0 < len(given) <= MAX_KEY_CHARS and given.isascii() and given.isprintable()):
        message = f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
        raise InvalidRequest(message, code="invalid_idempotency_key")
    return given


def fingerprint(request: Request, body: bytes) -> str:
    """SHA-256 (hex) of what a request asks: its path, its query but for a key in it
    (Gemini's `?key=`: a rolled key asks the same), and its JSON body in a canonical form
    (keys sorted, no whitespace), so that two clients' serialisations of one request agree."""
    query = sorted((k, v) for k, v in request.query_params.multi_items() if k != "key")
    digest = hashlib.sha256(request.url.path.encode("utf-8", "surrogatepass"))
    digest.update(b"\n" + urlencode(query).encode() + b"\n")
    digest.update(orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def _replay(found: repo.Found, fingerprint: str, headers: dict[str, str]) -> Response:
    if found.fingerprint != fingerprint:
        raise KeyReused(
            f"this {HEADER} was used for a different request (another body, path or query) "
            "less than 24 hours ago: send a new key with a new request"
        )
    if found.state == "running":
        raise KeyInUse(f"the first request with this {HEADER} is still running: retry later")
    if found.state == "spent" or found.answer is None:
        raise AnswerNotKept(
            f"the first request with this {HEADER} was billed but its answer was not kept "
            f"(over {answers.MAX_BYTES // 2**20} MiB, or it failed): send a new key to ask again"
        )
    return answers.replay(
        found.status or 200, found.content_type or "", found.answer, headers, found.request_id
    )


class Taken(Claim):
    """A call that claimed its key: kept, spent or given back once it has ended."""

    def __init__(self, writes: GroupCommit, key: CachedKey, row: dict[str, Any]) -> None:
        super().__init__()
        self._writes = writes
        self._wallet = key.wallet_id
        self._where = (row["key_id"], row["idempotency_key"], row["token"])
        self._created = row["created_at"]
        self.billed = False
        self.finished = False
        self._stream: answers.Copy | None = None

    async def settled(self, *, billed: bool) -> None:
        self.billed = self.billed or billed
        if self._stream is not None:  # a stream settles once it has ended: all of it sent
            await self.finish(self._stream.answer())

    async def recorded(self, response: Response) -> Response:
        if isinstance(response, StreamingResponse):
            self._stream = answers.copy(response)  # finished as it settles
            return response
        await self.finish(answers.whole(response))  # settled already
        return response

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:  # the call failed: nothing to replay
            await self.finish(None)

    async def finish(self, answer: Answer | None) -> None:
        """Keep `answer` if the call was billed (spent without one), else give the key back."""
        if self.finished:
            return
        self.finished = True
        expires = self._created + RETENTION
        if not self.billed:
            fields: dict[str, Any] | None = None
        elif answer is None:
            fields = {"state": "spent", "expires_at": expires}
        else:
            fields = {
                "state": "answered",
                "status": answer.status,
                "content_type": answer.content_type,
                "answer": answer.body,
                "expires_at": expires,
            }

        async def write(conn: AsyncConnection) -> bool:
            if fields is None:
                return await repo.release(conn, *self._where)
            return await repo.finish(conn, *self._where, **fields)

        # Shielded: a client gone mid-call cancels the request, and its claim must still end.
        with anyio.CancelScope(shield=True):
            try:
                await self._writes.run(write, order=self._wallet)
            except Exception:
                log.warning("an idempotency claim was not finished", exc_info=True)
