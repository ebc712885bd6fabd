"""/console/keys: a user's keys, and the keys of the orgs they own or administer (the
API's rule: owners and admins manage what is the org's). Create (the secret shown once),
change roster, caps, budget, rate limit and expiry, roll, revoke: keys/service.py's use
cases, as the CLI and the admin API run them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.billing.payer import MANAGING_ROLES
from bytespike.console import seats
from bytespike.console.web import Form, Viewer, ctx_of, render
from bytespike.context import Context
from bytespike.db.metadata import stored_id
from bytespike.errors import BytespikeError, InvalidRequest, NotFound
from bytespike.keys import service as keys
from bytespike.keys.service import CLEAR, KeyChanges
from bytespike.keys.tables import QUOTA_RESETS
from bytespike.money import MoneyError, parse_usd

GRACE_CHOICES = ((0, "none: the old secret stops now"), (3600, "1 hour"), (86400, "1 day"))


def managed_orgs(viewer: Viewer) -> list[Any]:
    return [m for m in viewer.memberships if m.role in MANAGING_ROLES]


def may_manage(viewer: Viewer, key: dict[str, Any]) -> bool:
    if viewer.is_operator or key["user_id"] == viewer.user_id:
        return True
    return key["org_id"] is not None and viewer.role_in(key["org_id"]) in MANAGING_ROLES


async def _listing(ctx: Context, viewer: Viewer, revoked: bool) -> list[dict[str, Any]]:
    """(title, keys) groups: the viewer's own, then each org they manage."""
    own = await keys.list_keys(ctx, user=f"id:{viewer.user_id}", revoked=revoked, limit=200)
    groups = [{"title": "Your keys", "keys": own["data"]}]
    for org in managed_orgs(viewer):
        found = await keys.list_keys(ctx, org=f"id:{org.org_id}", revoked=revoked, limit=200)
        others = [k for k in found["data"] if k["user_id"] != viewer.user_id]
        groups.append({"title": f"Other members' keys in {org.name}", "keys": others})
    return groups


async def index(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    revoked = request.query_params.get("revoked") == "1"
    return render(
        request,
        "keys.html",
        viewer=viewer,
        active="keys",
        groups=await _listing(ctx, viewer, revoked),
        revoked=revoked,
        models=ctx.catalog.ids,
        resets=QUOTA_RESETS,
        **shown,
    )


def _roster(form: Form, models: list[str]) -> list[tuple[str, int | None]]:
    chosen = form.all("model")
    roster = []
    for model in models:
        if model in chosen:
            roster.append((model, _usd_or_none(form.text(f"cap_{model}"), f"cap of {model}")))
    return roster


def _usd_or_none(text: str, what: str) -> int | None:
    if not text:
        return None
    try:
        return parse_usd(text)
    except MoneyError as exc:
        raise InvalidRequest(f"{what}: {exc}") from exc


def _whole(text: str, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidRequest(f"{what} must be a whole number")
    return int(text)


async def create(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    org = seats.chosen_org(viewer, form.text("org"))
    try:
        roster = _roster(form, ctx.catalog.ids)
        created = await keys.create(
            ctx,
            username=f"id:{viewer.user_id}",
            org=None if org is None else f"id:{org}",
            models=roster
            if len(roster) < len(ctx.catalog.ids) or any(c for _, c in roster)
            else None,
            rate_limit=_whole(form.text("rate_limit"), "rate limit"),
            quota_reset=form.text("quota_reset") or None,
            name=form.text("name") or None,
        )
    except BytespikeError as exc:
        return await index(request, viewer, error=exc.message)
    return await index(request, viewer, created=created, notice=f"Key {created['id']} created.")


async def _managed(ctx: Context, viewer: Viewer, text: str) -> dict[str, Any]:
    key_id = stored_id(text)
    if key_id is None:
        raise NotFound(f"no key {text[:20]}")
    key = await keys.show(ctx, key_id)
    if not may_manage(viewer, key):
        raise NotFound(f"no key {key_id}")  # as if it did not exist: ids reveal nothing
    return key


async def detail(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    key = await _managed(ctx, viewer, request.path_params["key_id"])
    on_roster = {m["id"]: m for m in key["models"]}
    return render(
        request,
        "key.html",
        viewer=viewer,
        active="keys",
        key=key,
        on_roster=on_roster,
        models=ctx.catalog.ids,
        resets=QUOTA_RESETS,
        graces=GRACE_CHOICES,
        **shown,
    )


async def change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    key = await _managed(ctx, viewer, request.path_params["key_id"])
    action = form.get("action", "update")
    try:
        if action == "revoke":
            await keys.revoke(ctx, key["id"])
            return await detail(request, viewer, notice=f"Key {key['id']} revoked.")
        if action == "roll":
            grace = _whole(form.text("grace_seconds"), "grace") or 0
            rolled = await keys.roll(ctx, key["id"], grace_seconds=grace)
            return await detail(request, viewer, created=rolled, notice="New secret issued.")
        await keys.update(ctx, key["id"], changes(form, key, ctx.catalog.ids))
    except BytespikeError as exc:
        return await detail(request, viewer, error=exc.message)
    return await detail(request, viewer, notice="Saved.")


def changes(form: Form, key: dict[str, Any], models: list[str]) -> KeyChanges:
    """What the edit form changes compared with the key as shown: only the fields that
    differ, so saving an untouched form changes nothing (nor makes a whole-catalog roster
    explicit)."""
    roster = _roster(form, models)
    current = [(m["id"], _micros(m["quota_cap_usd"])) for m in key["models"]]
    kept = {m for m, _ in roster}
    budget = key["budget"] or {}
    return KeyChanges(
        name=form.text("name") if form.text("name") != (key["name"] or "") else None,
        models=roster if roster != current else None,
        remove_models=[m for m, _ in current if m not in kept] if roster != current else None,
        rate_limit=_whole(form.text("rate_limit"), "rate limit"),
        quota_reset=_setting(form.text("quota_reset"), key["quota_reset"]),
        budget=_budget(form.text("budget_usd"), budget.get("budget_usd")),
        budget_reset=_setting(form.text("budget_reset"), budget.get("reset")),
        expires_at=_setting(form.text("expires_at"), key["expires_at"]),
    )


def _micros(usd: float | None) -> int | None:
    return None if usd is None else parse_usd(usd)


def _setting(given: str, current: str | None) -> str | None:
    """A text setting: unchanged (None), cleared (CLEAR) or the new value."""
    if given == (current or ""):
        return None
    return given or CLEAR


def _budget(given: str, current: float | None) -> int | str | None:
    if not given:
        return None if current is None else CLEAR
    micros = _usd_or_none(given, "budget")
    return None if current is not None and micros == parse_usd(current) else micros
