"""/api/v1/me/webhooks: endpoints of the caller's paying wallet, their deliveries and tests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from bytespike.api.auth import Caller, KeyHolder
from bytespike.api.errors import KEY_ERRORS
from bytespike.api.responses import JSON
from bytespike.db.metadata import MAX_BIG_ID, MAX_ID, stored_id
from bytespike.errors import NotFound
from bytespike.webhooks import service
from bytespike.webhooks.urls import MAX_URL

router = APIRouter(prefix="/api/v1/me/webhooks", tags=["webhooks"], responses=KEY_ERRORS)


# Taken as text and checked here, so that an id no row can have (past its column's range,
# not an integer) is 404 like any missing row, not a 400 from validation or a database error.
# Routes take them after the key, so a caller without a key learns nothing about ids.
def _endpoint_id(
    endpoint_id: Annotated[str, Path(json_schema_extra={"type": "integer", "maximum": MAX_ID})],
) -> int:
    found = stored_id(endpoint_id)
    if found is None:
        raise NotFound(f"no webhook endpoint {endpoint_id[:40]}")
    return found


def _delivery_id(
    delivery_id: Annotated[str, Path(json_schema_extra={"type": "integer", "maximum": MAX_BIG_ID})],
) -> int:
    found = stored_id(delivery_id, big=True)
    if found is None:
        raise NotFound(f"no delivery {delivery_id[:40]} for this endpoint")
    return found


EndpointId = Depends(_endpoint_id)
DeliveryId = Depends(_delivery_id)


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL)
    events: list[str]
    description: str | None = Field(default=None, max_length=500)


class EndpointChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=MAX_URL)
    events: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


@router.post("", status_code=201, summary="Register an endpoint; its secret is shown once")
async def create(request: Request, body: NewEndpoint, caller: Caller = KeyHolder) -> JSON:
    created = await service.create(
        request.app.state.ctx,
        caller.key,
        url=body.url,
        event_types=body.events,
        description=body.description,
    )
    return JSON(created, status_code=201, headers=caller.rate_headers)


@router.get("", summary="List the wallet's endpoints")
async def listing(request: Request, caller: Caller = KeyHolder) -> JSON:
    return JSON(
        await service.listing(request.app.state.ctx, caller.key), headers=caller.rate_headers
    )


@router.get("/{endpoint_id}")
async def get(request: Request, caller: Caller = KeyHolder, endpoint_id: int = EndpointId) -> JSON:
    found = await service.get(request.app.state.ctx, caller.key, endpoint_id)
    return JSON(found, headers=caller.rate_headers)


@router.patch("/{endpoint_id}", summary="Change url, events, description or enabled")
async def update(
    request: Request,
    body: EndpointChanges,
    caller: Caller = KeyHolder,
    endpoint_id: int = EndpointId,
) -> JSON:
    changes = body.model_dump(exclude_unset=True)
    for field in ("url", "events", "enabled"):
        if field in changes and changes[field] is None:
            changes.pop(field)
    updated = await service.update(request.app.state.ctx, caller.key, endpoint_id, changes)
    return JSON(updated, headers=caller.rate_headers)


@router.delete("/{endpoint_id}")
async def delete(
    request: Request, caller: Caller = KeyHolder, endpoint_id: int = EndpointId
) -> JSON:
    deleted = await service.delete(request.app.state.ctx, caller.key, endpoint_id)
    return JSON(deleted, headers=caller.rate_headers)


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a webhook.test event")
async def send_test(
    request: Request, caller: Caller = KeyHolder, endpoint_id: int = EndpointId
) -> JSON:
    sent = await service.send_test(request.app.state.ctx, caller.key, endpoint_id)
    return JSON(sent, status_code=202, headers=caller.rate_headers)


@router.post("/{endpoint_id}/rotate-secret", summary="Replace the signing secret (shown once)")
async def rotate_secret(
    request: Request, caller: Caller = KeyHolder, endpoint_id: int = EndpointId
) -> JSON:
    rotated = await service.rotate_secret(request.app.state.ctx, caller.key, endpoint_id)
    return JSON(rotated, headers=caller.rate_headers)


@router.get("/{endpoint_id}/deliveries", summary="Recent deliveries with their attempts")
async def deliveries(
    request: Request, caller: Caller = KeyHolder, endpoint_id: int = EndpointId
) -> JSON:
    found = await service.deliveries(request.app.state.ctx, caller.key, endpoint_id)
    return JSON(found, headers=caller.rate_headers)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry", status_code=202)
async def retry(
    request: Request,
    caller: Caller = KeyHolder,
    endpoint_id: int = EndpointId,
    delivery_id: int = DeliveryId,
) -> JSON:
    queued = await service.retry(request.app.state.ctx, caller.key, endpoint_id, delivery_id)
    return JSON(queued, status_code=202, headers=caller.rate_headers)
