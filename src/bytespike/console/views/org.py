"""/console/org: an org's wallet, members and roles (orgs/service.py). Its owners and admins
add members, change roles and remove members under the API's rules (the last owner stays;
a removed member's keys made in the org are revoked); only an owner makes or unmakes an
owner. Members see it read-only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.billing.payer import MANAGING_ROLES
from bytespike.console import seats
from bytespike.console.web import Form, Viewer, ctx_of, render
from bytespike.errors import BytespikeError, PermissionDenied
from bytespike.orgs import service as orgs
from bytespike.orgs.tables import ROLES


def _org(viewer: Viewer, wanted: str | None) -> int | None:
    chosen = seats.chosen_org(viewer, wanted)
    if chosen is None and viewer.memberships:
        return viewer.memberships[0].org_id
    return chosen


async def show(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    form = shown.pop("form", None)
    org_id = _org(viewer, form.text("org") if form else request.query_params.get("org"))
    org = None if org_id is None else await orgs.show(ctx, f"id:{org_id}")
    role = viewer.role_in(org_id)
    return render(
        request,
        "org.html",
        viewer=viewer,
        active="org",
        org=org,
        role=role,
        manager=role in MANAGING_ROLES,
        roles=ROLES if role == "owner" else [r for r in ROLES if r != "owner"],
        org_id=org_id,
        **shown,
    )


async def change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    org_id = _org(viewer, form.text("org"))
    role = viewer.role_in(org_id)
    action = form.get("action", "")
    username = form.text("username")
    try:
        if role not in MANAGING_ROLES or org_id is None:
            raise PermissionDenied("only the org's owners and admins can change its members")
        org = await orgs.show(ctx, f"id:{org_id}")
        current = next((m["role"] for m in org["members"] if m["username"] == username), None)
        wanted = form.text("role") if action == "role" else None
        if role != "owner" and "owner" in (current, wanted):
            raise PermissionDenied("only an owner can make, unmake or remove an owner")
        if action == "remove":
            removed = await orgs.remove_member(ctx, org=f"id:{org_id}", username=username)
            revoked = len(removed["revoked_key_ids"])
            notice = f"Removed {username}; {revoked} of their keys in the org revoked."
        else:
            await orgs.add_member(
                ctx, org=f"id:{org_id}", username=username, role=wanted or "member"
            )
            notice = f"{username} is {wanted or 'member'}."
    except BytespikeError as exc:
        return await show(request, viewer, form=form, error=exc.message)
    return await show(request, viewer, form=form, notice=notice)
