"""/console/admin/...: the operators' area. Users (create, suspend, invite to reset a
password, operator or not), orgs (create, pause, resume), wallets (top up, adjust with a
reason), anyone's keys, a wallet's ledger with "verify", the audit log, the catalog with
prices, and the server's health. Each is the service the CLI and the admin API call; the
audit log names the operator as "console:<username>"."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.accounts import service as accounts
from bytespike.audit import service as audit
from bytespike.billing import service as billing
from bytespike.console import credentials, repo
from bytespike.console.web import Form, Viewer, ctx_of, render
from bytespike.db.metadata import stored_id
from bytespike.errors import BytespikeError, InvalidRequest
from bytespike.keys import service as keys
from bytespike.money import MoneyError, parse_usd, to_usd_number
from bytespike.orgs import service as orgs


def _owner(source: Any) -> tuple[str | None, str | None]:
    """(user, org) named by a form or a query: exactly one of them, or neither."""
    user, org = (source.get("user") or "").strip(), (source.get("org") or "").strip()
    return user or None, org or None


def _usd(text: str, *, negative: bool = False) -> int:
    try:
        return parse_usd(text, allow_negative=negative)
    except MoneyError as exc:
        raise InvalidRequest(f"usd: {exc}") from exc


async def overview(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    async with ctx.db.read() as conn:
        health = await repo.health(conn)
    return render(
        request,
        "admin/index.html",
        viewer=viewer,
        active="admin",
        health=health,
        held=to_usd_number(health.holds_pending_micros),
    )


async def health(request: Request, viewer: Viewer) -> Response:
    return await overview(request, viewer)


async def users(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    listed = await accounts.list_users(ctx, cursor=request.query_params.get("cursor"), limit=100)
    async with ctx.db.read() as conn:
        operators = await repo.operators(conn)
    return render(
        request,
        "admin/users.html",
        viewer=viewer,
        active="admin",
        listed=listed,
        operators=operators,
        **shown,
    )


async def users_change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    action, user = form.get("action", ""), form.text("user")
    try:
        if action == "create":
            made = await accounts.create_user(
                ctx,
                username=form.text("username"),
                email=form.text("email"),
                tier=form.text("tier") or "individual",
            )
            notice = f"Created {made['username']} (id {made['id']})."
        elif action in ("suspend", "unsuspend"):
            await accounts.set_suspended(ctx, user, suspended=action == "suspend")
            notice = f"{user}: {action}ed."
        elif action == "invite":
            link = await credentials.invite(ctx, user)
            return await users(
                request, viewer, invite=link, notice=f"Invite link for {link['username']}."
            )
        elif action in ("grant", "revoke"):
            await credentials.set_operator(ctx, user, operator=action == "grant")
            notice = f"{user}: operator {'granted' if action == 'grant' else 'revoked'}."
        else:
            raise InvalidRequest(f"unknown action {action[:30]!r}")
    except BytespikeError as exc:
        return await users(request, viewer, error=exc.message)
    return await users(request, viewer, notice=notice)


async def orgs_page(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    listed = await orgs.list_orgs(ctx, cursor=request.query_params.get("cursor"), limit=100)
    return render(request, "admin/orgs.html", viewer=viewer, active="admin", listed=listed, **shown)


async def orgs_change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    action = form.get("action", "")
    try:
        if action == "create":
            made = await orgs.create(ctx, name=form.text("name"))
            notice = f"Created org {made['name']} (id {made['id']})."
        elif action in ("pause", "resume"):
            await orgs.set_paused(ctx, org=f"id:{form.text('org')}", paused=action == "pause")
            notice = f"Org {form.text('org')}: {action}d."
        elif action == "add_member":
            await orgs.add_member(
                ctx,
                org=f"id:{form.text('org')}",
                username=form.text("username"),
                role=form.text("role"),
            )
            notice = f"{form.text('username')} is {form.text('role')}."
        else:
            raise InvalidRequest(f"unknown action {action[:30]!r}")
    except BytespikeError as exc:
        return await orgs_page(request, viewer, error=exc.message)
    return await orgs_page(request, viewer, notice=notice)


async def wallets(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    form = shown.pop("form", None)
    user, org = _owner(form if form is not None else request.query_params)
    wallet = None
    if user or org:
        try:
            wallet = await billing.show_wallet(ctx, username=user, org=org)
        except BytespikeError as exc:
            shown.setdefault("error", exc.message)
    return render(
        request,
        "admin/wallets.html",
        viewer=viewer,
        active="admin",
        wallet=wallet,
        user=user or "",
        org=org or "",
        **shown,
    )


async def wallets_change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    user, org = _owner(form)
    reference = form.text("reference") or None
    try:
        if form.get("action") == "adjust":
            done = await billing.adjust(
                ctx,
                amount=_usd(form.text("usd"), negative=True),
                reason=form.text("reason"),
                username=user,
                org=org,
                reference=reference,
            )
        else:
            done = await billing.top_up(
                ctx, amount=_usd(form.text("usd")), username=user, org=org, reference=reference
            )
    except BytespikeError as exc:
        return await wallets(request, viewer, form=form, error=exc.message)
    what = "applied" if done["applied"] else "already applied (same reference): not again"
    return await wallets(
        request,
        viewer,
        form=form,
        notice=f"{what}; available now ${done['balance']['available_usd']:,.2f}",
    )


async def keys_page(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    p = request.query_params
    listed = await keys.list_keys(
        ctx,
        user=p.get("user") or None,
        org=p.get("org") or None,
        revoked=p.get("revoked") == "1",
        cursor=p.get("cursor"),
        limit=100,
    )
    return render(
        request,
        "admin/keys.html",
        viewer=viewer,
        active="admin",
        listed=listed,
        params={k: v for k, v in p.items() if k != "cursor" and v},
        **shown,
    )


async def keys_change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    key_id = stored_id(form.text("key_id"))
    try:
        if key_id is None:
            raise InvalidRequest("no such key")
        await keys.revoke(ctx, key_id)
    except BytespikeError as exc:
        return await keys_page(request, viewer, error=exc.message)
    return await keys_page(request, viewer, notice=f"Key {key_id} revoked.")


async def ledger(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    user, org = _owner(request.query_params)
    entries = None
    if user or org:
        try:
            entries = await billing.ledger_entries(
                ctx, username=user, org=org, cursor=request.query_params.get("cursor"), limit=100
            )
        except BytespikeError as exc:
            shown.setdefault("error", exc.message)
    return render(
        request,
        "admin/ledger.html",
        viewer=viewer,
        active="admin",
        entries=entries,
        user=user or "",
        org=org or "",
        verified=shown.pop("verified", None),
        **shown,
    )


async def ledger_verify(request: Request, viewer: Viewer, form: Form) -> Response:
    verified = await billing.verify(ctx_of(request))
    return await ledger(request, viewer, verified=verified)


async def audit_log(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    listed = await audit.list_entries(ctx, cursor=request.query_params.get("cursor"), limit=100)
    return render(request, "admin/audit.html", viewer=viewer, active="admin", listed=listed)


async def models(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    return render(
        request,
        "admin/models.html",
        viewer=viewer,
        active="admin",
        models=[ctx.catalog.get(m) for m in ctx.catalog.ids],
        now=ctx.clock.now(),  # the price periods in force (billing/pricebook.py)
    )
