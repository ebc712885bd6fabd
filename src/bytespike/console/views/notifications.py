"""/console/account/notifications: the paying wallet's low-balance threshold and its
webhook endpoints (register with the secret shown once, edit, test, rotate, deliveries
with their attempts, retry), through notifications/service.py and webhooks/service.py, as
PUT /api/v1/me/notifications and /api/v1/me/webhooks run them for a key of the viewer's.
An org's wallet is managed by its owners and admins; its members see the threshold only."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bytespike.console import seats
from bytespike.console.web import Form, Viewer, ctx_of, render
from bytespike.db.metadata import stored_id
from bytespike.errors import BytespikeError, InvalidRequest, NotFound, PermissionDenied
from bytespike.keys.repo import KeyRecord
from bytespike.money import MoneyError, parse_usd
from bytespike.notifications import service as notifications
from bytespike.webhooks import events
from bytespike.webhooks import service as webhooks

PATH = "/account/notifications"


def _seat(request: Request, viewer: Viewer, form: Form | None = None) -> tuple[KeyRecord, Any]:
    wanted = form.text("org") if form is not None else request.query_params.get("org")
    org_id = seats.chosen_org(viewer, wanted)
    return seats.seat(viewer, org_id), org_id


async def show(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    seat, org_id = _seat(request, viewer, shown.pop("form", None))
    settings = await notifications.get(ctx, seat)
    try:
        endpoints = (await webhooks.listing(ctx, seat))["data"]
        manager = True
    except PermissionDenied:
        endpoints, manager = [], False
    return render(
        request,
        "notifications.html",
        viewer=viewer,
        active="notifications",
        settings=settings,
        endpoints=endpoints,
        manager=manager,
        org_id=org_id,
        event_types=events.SUBSCRIBABLE,
        **shown,
    )


async def change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    seat, _ = _seat(request, viewer, form)
    action = form.get("action", "")
    try:
        if action == "threshold":
            threshold = _usd(form.text("threshold_usd"), "threshold_usd")
            await notifications.set_threshold(ctx, seat, threshold)
            return await show(request, viewer, form=form, notice="Threshold saved.")
        if action == "register":
            created = await webhooks.create(
                ctx,
                seat,
                url=form.text("url"),
                event_types=form.all("events"),
                description=form.text("description") or None,
            )
            return await show(
                request,
                viewer,
                form=form,
                secret=created,
                notice=f"Endpoint {created['id']} registered.",
            )
    except BytespikeError as exc:
        return await show(request, viewer, form=form, error=exc.message)
    return await show(request, viewer, form=form, error=f"unknown action {action[:30]!r}")


def _usd(text: str, field: str) -> int:
    try:
        return parse_usd(text)
    except MoneyError as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc


def _endpoint_id(request: Request) -> int:
    found = stored_id(request.path_params["endpoint_id"])
    if found is None:
        raise NotFound("no such webhook endpoint")
    return found


async def endpoint(request: Request, viewer: Viewer, **shown: Any) -> Response:
    ctx = ctx_of(request)
    seat, org_id = _seat(request, viewer, shown.pop("form", None))
    endpoint_id = _endpoint_id(request)
    found = await webhooks.get(ctx, seat, endpoint_id)
    sent = await webhooks.deliveries(ctx, seat, endpoint_id)
    return render(
        request,
        "endpoint.html",
        viewer=viewer,
        active="notifications",
        endpoint=found,
        deliveries=sent["data"],
        org_id=org_id,
        event_types=events.SUBSCRIBABLE,
        **shown,
    )


async def endpoint_change(request: Request, viewer: Viewer, form: Form) -> Response:
    ctx = ctx_of(request)
    seat, _ = _seat(request, viewer, form)
    endpoint_id = _endpoint_id(request)
    action = form.get("action", "")
    try:
        if action == "test":
            sent = await webhooks.send_test(ctx, seat, endpoint_id)
            notice = f"Test event {sent['event_id']} queued."
        elif action == "rotate":
            rotated = await webhooks.rotate_secret(ctx, seat, endpoint_id)
            return await endpoint(
                request, viewer, form=form, secret=rotated, notice="New signing secret issued."
            )
        elif action == "retry":
            delivery = stored_id(form.text("delivery_id"), big=True)
            if delivery is None:
                raise NotFound("no such delivery")
            await webhooks.retry(ctx, seat, endpoint_id, delivery)
            notice = f"Delivery {delivery} will be retried now."
        elif action == "delete":
            await webhooks.delete(ctx, seat, endpoint_id)
            return await show(request, viewer, form=form, notice=f"Endpoint {endpoint_id} deleted.")
        else:
            await webhooks.update(ctx, seat, endpoint_id, _edits(form))
            notice = "Saved."
    except BytespikeError as exc:
        return await endpoint(request, viewer, form=form, error=exc.message)
    return await endpoint(request, viewer, form=form, notice=notice)


def _edits(form: Form) -> dict[str, Any]:
    return {
        "url": form.text("url"),
        "events": form.all("events"),
        "description": form.text("description") or None,
        "enabled": form.get("enabled") == "on",
    }
