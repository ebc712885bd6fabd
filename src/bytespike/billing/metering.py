"""The two transactions of a metered call: reserve before the upstream call, settle after.

`reserve` re-checks that the key is live, enforces the key's cap on the model, picks the
output budget and places the hold, all in one transaction; `settle` charges the reported
usage (never past the hold's wallet or the cap), frees the rest and records the call.
Both are group-committed on SQLite (db/batch.py): they check before they write. The one
refusal that writes (a cap's first refusal in its period tells the owner) is returned, not
raised: see `reserve`.

Failure policy: fail closed. No hold, no upstream call; a call whose usage is unknown is
released, not charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike.billing import budgets, fused, holds, pricing, quotas
from bytespike.billing.tables import wallets
from bytespike.catalog import Model
from bytespike.db.batch import Fused
from bytespike.db.direct import hot
from bytespike.errors import (
    AuthenticationError,
    BytespikeError,
    InsufficientBalance,
    KeyBudgetReached,
    PermissionDenied,
    QuotaCapReached,
)
from bytespike.keys.tables import api_keys
from bytespike.money import to_usd_text
from bytespike.orgs.tables import orgs
from bytespike.records import record
from bytespike.upstream.base import Usage
from bytespike.upstream.deployments import Attempt
from bytespike.usage import repo as usage_repo
from bytespike.webhooks import events


class KeyRevoked(AuthenticationError):
    """The key was revoked after it was cached; the cache must forget it."""


class KeyChanged(BytespikeError):
    """The key changed (settings, roll, its user suspended) after the caller read it: the
    caller reads it anew, as of `version` (what the hold's transaction found) or later, and
    tries again. Nothing was written."""

    status = 409
    code = "key_changed"

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


@record
class Ticket:
    """A placed hold and what it pays for."""

    hold_id: int
    hold_entry_id: int  # the hold's 'hold' ledger entry, named by the usage record
    amount: int
    max_tokens: int  # output tokens the hold covers; sent upstream as the limit
    wallet_id: int
    key_id: int
    model: Model
    quota_reset: str | None
    capped: bool  # counted against the key's cap on this model
    budgeted: bool = False  # counted against the key's total budget
    budget_reset: str | None = None
    started: datetime | None = None  # when the hold was placed: what prices the call


@record
class HoldRequest:
    """What a call asks to reserve: its key and paying wallet, the model, and its bounds."""

    key_id: int
    wallet_id: int
    model: Model
    quota_reset: str | None
    capped: bool  # as of `version` of the key, which `reserve` checks is still current
    input_tokens: int
    max_tokens: int | None
    now: datetime
    ttl: timedelta
    version: int = 0
    budgeted: bool = False
    budget_reset: str | None = None
    reach: pricing.Reach = pricing.NOTHING  # what it may be billed for beyond its tokens
    token: int | None = None  # the call's own random number, kept on its hold (holds.place)

    def ticket(
        self,
        placed: holds.Placed,
        amount: int,
        output: int,
        *,
        capped: bool,
        budgeted: bool = False,
    ) -> Ticket:
        """What a hold placed for this request pays for."""
        return Ticket(
            hold_id=placed.hold_id,
            hold_entry_id=placed.entry_id,
            amount=amount,
            max_tokens=output,
            wallet_id=self.wallet_id,
            key_id=self.key_id,
            model=self.model,
            quota_reset=self.quota_reset,
            capped=capped,
            budgeted=budgeted,
            budget_reset=self.budget_reset,
            started=self.now,
        )


@dataclass(frozen=True, slots=True)
class CapRefusal:
    """The key's cap refused the call (402 quota_cap_reached): `error` is for the caller to
    raise once the transaction that may have told the owner has committed."""

    error: QuotaCapReached


Reservation = Ticket | CapRefusal


def ticket_or_raise(reservation: Reservation) -> Ticket:
    """The ticket; or the cap's refusal raised, once `reserve`'s transaction committed."""
    if isinstance(reservation, CapRefusal):
        raise reservation.error
    return reservation


@record
class Outcome:
    """How the call ended, for the usage record."""

    status: str  # see usage.tables (its status CHECK)
    http_status: int
    stream: bool
    latency_ms: int
    provider: str
    request_id: str | None = None  # the HTTP request's (bytespike/request_ids.py)
    attempts: tuple[Attempt, ...] = ()  # each deployment tried (proxy/fallback.py)


async def reserve(conn: AsyncConnection, req: HoldRequest) -> Reservation:
    """Place the call's hold: its ticket, or the cap's refusal. Other refusals (401, 403, 402
    insufficient_balance) raise, having written nothing.

    A cap's refusal is returned, not raised, because it may write: the first refusal of a
    quota period tells the owner (`quota.cap_reached`), and that event and its marker must
    commit with the refusal. Raised, they would be lost wherever a raise rolls the
    transaction back (`Database.write`), and they would break db/batch.py's rule that an
    operation which raises has written nothing (its batch commits all the same). The caller
    raises `error` after the commit (`ticket_or_raise`)."""
    key_id, wallet_id, model, now = req.key_id, req.wallet_id, req.model, req.now
    input_tokens, max_tokens = req.input_tokens, req.max_tokens
    if req.token is not None and getattr(conn, "again", False):
        # Run again because its batch failed as it committed (db/batch.py): it may have
        # committed all the same, this call's first hold with it. That one goes back now,
        # not at its TTL, and the hold is placed anew.
        await holds.release_by_token(
            conn, wallet_id, req.token, now=now, capped=req.capped, budgeted=req.budgeted
        )
    available = await _live_available(conn, key_id, wallet_id, req.version)
    cap = None
    period = None
    if req.capped:
        period = quotas.period_start(req.quota_reset, now)
        cap = await quotas.cap_state(conn, key_id, model.id, period)
    if cap is not None and cap.room == 0:
        return await _refuse(conn, req, cap, period)
    budget = None
    if req.budgeted:  # after the cap row: wallet, cap, key is every transaction's lock order
        budget = await budgets.state(conn, key_id, quotas.period_start(req.budget_reset, now))
    if budget is not None and budget.room == 0:
        raise _budget_reached(budget)
    room = available
    for limit in (cap, budget):
        if limit is not None:
            room = min(room, limit.room)
    if max_tokens is None:
        # No limit from the client: as much as the model allows and the money covers.
        fit = pricing.affordable_output(model, room, input_tokens, now, reach=req.reach)
        output = max(min(model.max_output_tokens, fit), 1)
    else:
        output = min(max_tokens, model.max_output_tokens)
    amount = pricing.hold_amount(model, input_tokens, output, now, reach=req.reach)
    if cap is not None and amount > cap.room:
        return await _refuse(conn, req, cap, period, amount)
    if budget is not None and amount > budget.room:
        raise _budget_reached(budget, amount)
    if amount > available:
        raise InsufficientBalance(
            f"insufficient balance: this request may cost up to ${to_usd_text(amount)} "
            f"({input_tokens} input + {output} output tokens at most) and "
            f"${to_usd_text(available)} is available"
        )
    placed = await holds.place(
        conn,
        wallet_id,
        amount,
        now=now,
        ttl=req.ttl,
        key_id=key_id,
        model=model.id,
        token=req.token,
    )
    if cap is not None:
        await quotas.hold(conn, key_id, model.id, amount)
    if budget is not None:
        await budgets.hold(conn, key_id, amount)
    return req.ticket(placed, amount, output, capped=cap is not None, budgeted=budget is not None)


def _budget_reached(budget: quotas.CapState, amount: int | None = None) -> KeyBudgetReached:
    used = f"${to_usd_text(budget.spent)} spent and ${to_usd_text(budget.held)} in flight"
    if amount is None:
        return KeyBudgetReached(
            f"this key's budget of ${to_usd_text(budget.cap)} is reached ({used})"
        )
    return KeyBudgetReached(
        f"this request may cost up to ${to_usd_text(amount)}, more than the "
        f"${to_usd_text(budget.room)} left of this key's ${to_usd_text(budget.cap)} budget "
        f"({used}); lower max_tokens or raise the budget"
    )


def fused_reserve(req: HoldRequest) -> Fused[Reservation] | None:
    """`reserve` as one statement (PostgreSQL) in its common case: an uncapped key whose
    wallet covers the most this call may cost, the hold `reserve` would place then."""
    if req.capped or req.budgeted:
        return None
    model = req.model
    output = min(req.max_tokens or model.max_output_tokens, model.max_output_tokens)
    amount = pricing.hold_amount(model, req.input_tokens, output, req.now, reach=req.reach)
    params = fused.reserve_params(
        key_id=req.key_id,
        wallet_id=req.wallet_id,
        model=model.id,
        amount=amount,
        now=req.now,
        ttl=req.ttl,
        version=req.version,
        token=req.token,
    )
    return Fused(
        fused.RESERVE,
        params,
        lambda ids: req.ticket(holds.Placed(*ids), amount, output, capped=False),
        many=fused.RESERVE_MANY,
    )


async def _refuse(
    conn: AsyncConnection,
    req: HoldRequest,
    cap: quotas.CapState,
    period: datetime | None,
    amount: int | None = None,
) -> CapRefusal:
    """The cap refuses the call, telling the owner unless they were told this period."""
    await _tell_cap_reached(conn, req.wallet_id, req.key_id, req.model.id, cap, period, req.now)
    return CapRefusal(_cap_reached(req.model, cap, amount))


async def _tell_cap_reached(
    conn: AsyncConnection,
    wallet_id: int,
    key_id: int,
    model: str,
    cap: quotas.CapState,
    period: datetime | None,
    now: datetime,
) -> None:
    """`quota.cap_reached`, once per key, model and quota period (the marker decides)."""
    if await quotas.mark_reached(conn, key_id, model, period, now=now):
        await events.quota_cap_reached(
            conn, wallet_id, key_id=key_id, model=model, cap=cap.cap, used=cap.spent, now=now
        )


def _cap_reached(model: Model, cap: quotas.CapState, amount: int | None = None) -> QuotaCapReached:
    used = f"${to_usd_text(cap.spent)} spent and ${to_usd_text(cap.held)} in flight"
    if amount is None:
        return QuotaCapReached(
            f"this key's spend cap of ${to_usd_text(cap.cap)} on {model.id} is reached ({used})"
        )
    return QuotaCapReached(
        f"this request may cost up to ${to_usd_text(amount)}, more than the "
        f"${to_usd_text(cap.room)} left of this key's ${to_usd_text(cap.cap)} cap on {model.id} "
        f"({used}); lower max_tokens or raise the cap"
    )


def _live_query() -> sa.Select[bool, bool, bool, int, int]:
    key_org = orgs.alias("key_org")
    wallet_org = orgs.alias("wallet_org")
    k, w = api_keys.c, wallets.c
    return (
        sa.select(
            k.revoked_at.is_not(None),
            sa.func.coalesce(key_org.c.paused, sa.false()),
            sa.func.coalesce(wallet_org.c.paused, sa.false()),
            w.available_micros,
            k.version,
        )
        .select_from(
            api_keys.outerjoin(key_org, key_org.c.id == k.org_id)
            .join(wallets, w.id == sa.bindparam("wallet"))
            .outerjoin(wallet_org, wallet_org.c.id == w.org_id)
        )
        .where(k.id == sa.bindparam("key"))
    )


# Built once (hot path); PostgreSQL also locks the wallet row until commit.
_LIVE = hot(_live_query())
_LIVE_LOCKED = _LIVE.with_for_update(key_share=True, of=wallets)


async def _live_available(conn: AsyncConnection, key_id: int, wallet_id: int, version: int) -> int:
    """`available` of the paying wallet, after checking the key is live, unchanged since
    the caller read it (`version`), and neither its org nor the paying org is paused. Locks
    the wallet row on PostgreSQL until commit."""
    query = _LIVE_LOCKED if conn.dialect.name == "postgresql" else _LIVE
    row = (await conn.execute(query, {"key": key_id, "wallet": wallet_id})).one()
    revoked, key_paused, wallet_paused, available, current = row
    if revoked:
        raise KeyRevoked("this API key has been revoked")
    if current != version:
        message = "this API key changed while the request was admitted; try again"
        raise KeyChanged(message, version=current)
    if key_paused or wallet_paused:
        raise PermissionDenied("this key's org is paused")
    return int(available)


async def settle(
    conn: AsyncConnection,
    ticket: Ticket,
    usage: Usage | None,
    outcome: Outcome,
    *,
    now: datetime,
) -> int:
    """Charge what the upstream reported and free the rest; returns the micros charged.
    Without reported usage nothing is charged and the whole hold goes back."""
    model = ticket.model
    charged = 0
    entry_id = None  # the settlement's ledger entry
    receipt = None if usage is None else pricing.receipt(model, usage, ticket.started)
    if receipt is None:
        released = await holds.release(
            conn, ticket.hold_id, now=now, capped=ticket.capped, budgeted=ticket.budgeted
        )
        if not released and await _recorded_cost(conn, ticket) is not None:
            return 0  # released and recorded already, by this very settlement (see below)
    else:
        period = quotas.period_start(ticket.quota_reset, now) if ticket.capped else None
        cost = receipt.cost
        room = None
        budget_period = None
        if ticket.capped or ticket.budgeted:
            # A cap or budget bounds what the hold does not cover: a cost beyond it, or all
            # of it once the hold has expired (its TTL passed mid-call). Rows are locked
            # wallet first, then cap, then key, as `reserve` does, so none can deadlock.
            await holds.lock_wallet(conn, ticket.wallet_id)
            limits = []
            if ticket.capped:
                limits.append(await quotas.cap_state(conn, ticket.key_id, model.id, period))
            if ticket.budgeted:
                budget_period = quotas.period_start(ticket.budget_reset, now)
                limits.append(await budgets.state(conn, ticket.key_id, budget_period))
            rooms = [limit.room for limit in limits if limit is not None]
            room = min(rooms) if rooms else None
        try:
            settled = await holds.settle(conn, ticket.hold_id, cost, now=now, room=room)
        except holds.HoldClosed:
            # Settled already, by this very settlement: its commit went through but the
            # database's answer was lost, and the batch ran it again (db/batch.py). It is
            # not charged twice; the call answers with what it was charged then.
            if (done := await _recorded_cost(conn, ticket)) is None:
                raise
            return done
        charged, entry_id = settled.charged, settled.entry_id
        after = None
        if ticket.capped:
            after = await quotas.unhold(
                conn, ticket.key_id, model.id, settled.released, charged=charged, period=period
            )
        if ticket.budgeted:
            await budgets.unhold(
                conn, ticket.key_id, settled.released, charged=charged, period=budget_period
            )
        # Reaching the cap tells the owner unless a refusal already did this period. Only
        # after a charge: without one, `after.spent` may be an earlier period's.
        if after is not None and charged and after.spent >= after.cap:
            await _tell_cap_reached(
                conn, ticket.wallet_id, ticket.key_id, model.id, after, period, now
            )
    record = _record(ticket, usage, receipt, outcome, charged, now, entry_id)
    await usage_repo.insert(conn, record)
    return charged


async def _recorded_cost(conn: AsyncConnection, ticket: Ticket) -> int | None:
    return await usage_repo.recorded_cost(conn, ticket.hold_id, ticket.wallet_id, ticket.started)


def _record(
    ticket: Ticket,
    usage: Usage | None,
    receipt: pricing.Receipt | None,
    outcome: Outcome,
    cost: int,
    now: datetime,
    settle_entry_id: int | None = None,
) -> dict[str, Any]:
    """The call's usage record, with its receipt."""
    return usage_repo.row(
        wallet_id=ticket.wallet_id,
        key_id=ticket.key_id,
        hold_id=ticket.hold_id,
        hold_entry_id=ticket.hold_entry_id,
        settle_entry_id=settle_entry_id,
        model=ticket.model.id,
        provider=outcome.provider,
        usage=usage,
        receipt=receipt,
        cost=cost,
        status=outcome.status,
        http_status=outcome.http_status,
        stream=outcome.stream,
        latency_ms=outcome.latency_ms,
        now=now,
        request_id=outcome.request_id,
        attempts=outcome.attempts,
    )


def fused_settle(
    ticket: Ticket, usage: Usage | None, outcome: Outcome, *, now: datetime
) -> Fused[int] | None:
    """`settle` as one statement (PostgreSQL) in its common case: reported usage, an
    uncapped key without a budget, and a cost within the hold."""
    if usage is None or ticket.capped or ticket.budgeted:
        return None
    receipt = pricing.receipt(ticket.model, usage, ticket.started)
    cost = receipt.cost  # computed here, once, as the general path does: SQL only moves it
    if cost > ticket.amount:
        return None
    record = _record(ticket, usage, receipt, outcome, cost, now)
    return Fused(
        fused.SETTLE,
        fused.settle_params(record),
        lambda _wallet_id: cost,
        many=fused.SETTLE_MANY,
    )
