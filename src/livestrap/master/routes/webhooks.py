"""/webhooks: receivers of the master's events (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import Path as PathParam

from livestrap.master.deps import AdminOnly, SessionDep
from livestrap.master.schemas.webhooks import (
    DeliverySummary,
    WebhookCreate,
    WebhookCreated,
    WebhookSummary,
)
from livestrap.master.services import webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[AdminOnly])
WebhookRef = Annotated[str, PathParam(description="A webhook id, or a unique prefix of one.")]


@router.get("", response_model=list[WebhookSummary])
def list_webhooks(session: SessionDep) -> list[WebhookSummary]:
    """Every webhook, oldest first (never its secret)."""
    return webhooks.list_webhooks(session)


@router.post("", status_code=201, response_model=WebhookCreated,
             responses={409: {"description": "Too many webhooks."}})  # fmt: skip
def create_webhook(body: WebhookCreate, session: SessionDep) -> WebhookCreated:
    """Register a receiver for some events; the answer shows its secret, once."""
    try:
        return webhooks.create_webhook(session, body)
    except ValueError as err:
        raise HTTPException(status_code=409, detail=str(err)) from None


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: WebhookRef, session: SessionDep) -> Response:
    """Delete a webhook; its pending deliveries are dropped."""
    webhooks.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliverySummary])
def list_webhook_deliveries(
    webhook_id: WebhookRef,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliverySummary]:
    """The webhook's deliveries, newest first: state, attempts, status codes, errors."""
    return webhooks.webhook_deliveries(session, webhook_id, limit)
