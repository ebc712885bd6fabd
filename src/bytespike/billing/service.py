"""Use cases on wallets: who pays, top-ups, an operator's corrections, notification
thresholds, the operator's view, and the ledger read back and verified. Every change is
audited in its own transaction."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bytespike import pages
from bytespike.accounts import repo as users_repo
from bytespike.accounts import views
from bytespike.audit import log as audit
from bytespike.billing import ledger, reconciliation, repricing, wallets
from bytespike.billing.ledger import Balances
from bytespike.clock import as_utc, iso_z
from bytespike.context import Context
from bytespike.errors import InvalidRequest, NotFound
from bytespike.money import to_usd_number
from bytespike.orgs import repo as orgs_repo
from bytespike.webhooks import events


async def owner_wallet(
    conn: AsyncConnection, *, username: str | None = None, org: str | None = None
) -> int:
    """The wallet of `--user` or `--org`; enterprise users have none of their own."""
    if (username is None) == (org is None):
        raise InvalidRequest("name exactly one wallet owner: a user or an org")
    if org is not None:
        found_org = await orgs_repo.required(conn, org)
        wallet_id = await wallets.id_for(conn, org_id=found_org.id)
    else:
        user = await users_repo.required(conn, str(username))
        if user.tier == "enterprise":
            raise InvalidRequest(
                f"user {username!r} is enterprise and billed to their org: use --org"
            )
        wallet_id = await wallets.id_for(conn, user_id=user.id)
    if wallet_id is None:  # every user and org gets one at creation
        raise NotFound("wallet not found")
    return wallet_id


async def top_up(
    ctx: Context,
    *,
    amount: int,
    username: str | None = None,
    org: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    if amount <= 0:
        raise InvalidRequest("a top-up must be a positive amount")
    async with ctx.db.write() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        now = ctx.clock.now()
        before = await ledger.balances(conn, wallet_id, lock=True)
        result = await wallets.top_up(conn, wallet_id, amount, now=now, reference=reference)
        if result.applied:  # a retried payment already told the owner
            await events.topped_up(conn, wallet_id, amount, reference, now=now)
            change = {"entry_id": result.entry_id, "amount_usd": to_usd_number(amount)}
            await _audit_money(
                conn, "credits.topup", wallet_id, before, {**change, "reference": reference}, now
            )
        after = await wallets.view(conn, wallet_id)
    return {
        "id": result.entry_id,
        "wallet_id": wallet_id,
        "amount_usd": to_usd_number(result.amount),
        "reference": result.reference,
        "applied": result.applied,
        "balance": views.balance(after),
    }


async def adjust(
    ctx: Context,
    *,
    amount: int,
    reason: str,
    username: str | None = None,
    org: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Correct a wallet: credit (amount > 0) or debit (amount < 0) its available balance, as
    an 'adjust' entry with the reason as its memo. Idempotent by reference like a top-up; a
    debit never takes `available` below zero (400 `insufficient_available`). Adjustments
    count in no lifetime figure of the account endpoint: `lifetime_topup_usd` stays what
    was paid, `lifetime_spent_usd` what calls cost; they show in the wallet and its ledger."""
    if amount == 0:
        raise InvalidRequest(
            "an adjustment cannot be zero: a positive amount credits the wallet, a negative "
            "one debits it"
        )
    reason = _checked_reason(reason)
    if reference is not None and not 1 <= len(reference) <= 200:
        raise InvalidRequest("reference must be 1 to 200 characters")
    async with ctx.db.write() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        now = ctx.clock.now()
        before = await ledger.balances(conn, wallet_id, lock=True)
        result = await wallets.adjust(
            conn, wallet_id, amount, reason=reason, now=now, reference=reference
        )
        if result.applied:
            change: dict[str, Any] = {"entry_id": result.entry_id, "reason": reason}
            change |= {"amount_usd": to_usd_number(amount), "reference": reference}
            await _audit_money(conn, "credits.adjust", wallet_id, before, change, now)
        after = await wallets.view(conn, wallet_id)
        adjusted = (await ledger.balances(conn, wallet_id)).adjusted
    return {
        "id": result.entry_id,
        "wallet_id": wallet_id,
        "amount_usd": to_usd_number(result.amount),
        "reason": result.reason,
        "reference": result.reference,
        "applied": result.applied,
        "balance": {**views.balance(after), "lifetime_adjusted_usd": to_usd_number(adjusted)},
    }


def _checked_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidRequest("reason must be 1 to 500 characters: say why the money moves")
    return reason


async def _audit_money(
    conn: AsyncConnection,
    action: str,
    wallet_id: int,
    before: Balances,
    change: dict[str, Any],
    now: datetime,
) -> None:
    """Audit a movement: the wallet's five accounts before, after, and what moved them."""
    after = await ledger.balances(conn, wallet_id)
    await audit.record(
        conn,
        action,
        "wallet",
        wallet_id,
        now=now,
        before=_accounts(before),
        after={**_accounts(after), **change},
    )


def _accounts(balances: Balances) -> dict[str, float]:
    """{"available_usd": ..., "held_usd": ..., ...}: the wallet's five accounts."""
    return {
        f"{account.name}_usd": to_usd_number(getattr(balances, account.name))
        for account in dataclasses.fields(balances)
    }


async def set_threshold(
    ctx: Context, *, threshold: int, username: str | None = None, org: str | None = None
) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.db.write() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        before = await wallets.view(conn, wallet_id)
        await wallets.set_threshold(conn, wallet_id, threshold, now=now)
        after = await wallets.view(conn, wallet_id)
        if after.threshold != before.threshold:
            await audit.record(
                conn,
                "notifications.set",
                "wallet",
                wallet_id,
                now=now,
                before={"low_balance_threshold_usd": to_usd_number(before.threshold)},
                after={"low_balance_threshold_usd": to_usd_number(after.threshold)},
            )
    return {"id": wallet_id, "wallet_id": wallet_id, **views.balance(after)}


async def show_wallet(
    ctx: Context, *, username: str | None = None, org: str | None = None
) -> dict[str, Any]:
    """A wallet as operators see it: its owner and every figure of its balance."""
    async with ctx.db.read() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        balance = await wallets.view(conn, wallet_id)
        extra = await wallets.owner_and_adjusted(conn, wallet_id)
        if extra.user_id is not None:
            user = await users_repo.by_id(conn, extra.user_id)
            assert user is not None
            owner = {"type": "user", "id": user.id, "name": user.username}
        else:
            owning_org = await orgs_repo.by_id(conn, extra.org_id)
            assert owning_org is not None
            owner = {"type": "org", "id": owning_org.id, "name": owning_org.name}
    return {
        **views.wallet(balance),
        "owner": owner,
        "lifetime_adjusted_usd": to_usd_number(extra.adjusted_micros),
        "created_at": iso_z(as_utc(extra.created_at)),
    }


async def ledger_entries(
    ctx: Context,
    *,
    username: str | None = None,
    org: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of the wallet's ledger, newest first."""
    size, before = pages.checked_limit(limit), pages.parse_cursor(cursor, big=True)
    async with ctx.db.read() as conn:
        wallet_id = await owner_wallet(conn, username=username, org=org)
        rows = await ledger.entries(conn, wallet_id, before=before, limit=size + 1)
    return pages.page(rows, size, row_id=lambda row: int(row.id), view=_entry)


def _entry(row: Any) -> dict[str, Any]:
    """One entry; its amounts are what it moved in each account (deltas), in USD."""
    return {
        "id": row.id,
        "kind": row.kind,
        "available_usd": to_usd_number(row.d_available),
        "held_usd": to_usd_number(row.d_held),
        "spent_usd": to_usd_number(row.d_spent),
        "topped_up_usd": to_usd_number(row.d_topped_up),
        "adjusted_usd": to_usd_number(row.d_adjusted),
        "hold_id": row.hold_id,
        "key_id": row.key_id,
        "model": row.model,
        "reference": row.reference,
        "memo": row.memo,
        "created_at": iso_z(as_utc(row.created_at)),
    }


async def verify(ctx: Context) -> dict[str, Any]:
    """Every invariant of the books over every wallet (billing/reconciliation.py)."""
    async with ctx.db.read() as conn:
        report = await reconciliation.run(conn)
    return {
        "ok": report.ok,
        "checked": report.checked,
        "problem_count": report.problem_count,
        "problems": [dataclasses.asdict(problem) for problem in report.problems],
    }


async def reprice(
    ctx: Context,
    *,
    model: str,
    since: str,
    until: str,
    dry_run: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Price a model's calls settled from `since` to `until` (UTC days, both included)
    again with the catalog's price book as it is now, and post the difference to each
    wallet as one balanced correction (billing/repricing.py); with `dry_run`, only say what
    would be posted. Each correction is audited; running it again corrects nothing twice."""
    found = ctx.catalog.get(model)
    if found is None:
        raise NotFound(f"the model {model!r} is not in the catalog")
    start, end = _day(since, "since"), _day(until, "until") + timedelta(days=1)
    if start >= end:
        raise InvalidRequest(f"since ({since}) is after until ({until})")
    reason = _checked_reason(
        reason or f"price correction: {model} calls of {since} to {until} priced again"
    )
    async with ctx.db.read() as conn:
        pending = repricing.by_wallet(await repricing.calls(conn, found, start, end))
    corrections = []
    for wallet_id, calls in pending.items():
        async with ctx.db.write() as conn:
            now = ctx.clock.now()
            before = await ledger.balances(conn, wallet_id, lock=True)
            fix = await repricing.correct(
                conn, wallet_id, calls, model=model, reason=reason, now=now, dry_run=dry_run
            )
            if fix.status == "applied":
                # As credits.adjust has it: what the wallet was credited (a debit negative).
                change: dict[str, Any] = {"entry_id": fix.entry_id, "reason": reason}
                change |= {"model": model, "amount_usd": to_usd_number(-fix.amount)}
                change |= {"reference": fix.reference}
                await _audit_money(conn, "ledger.reprice", wallet_id, before, change, now)
        corrections.append(fix)
    moved = ("applied", "would_apply")
    return {
        "model": model,
        "since": since,
        "until": until,
        "dry_run": dry_run,
        "calls": sum(len(calls) for calls in pending.values()),
        "wallets": [repricing.as_json(fix) for fix in corrections],
        "total_usd": to_usd_number(sum(f.amount for f in corrections if f.status in moved)),
    }


def _day(value: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date like 2026-03-10, not {value!r}") from None
