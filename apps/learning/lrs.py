"""Forwarding learning records to the platform's external learning record store (LRS)."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.learning.models import Statement
from apps.learning.xapi import VERSION, statement_json

FORWARD_BATCH = 200


class ForwardFailed(Exception):
    """The LRS could not be reached or did not take a batch (the caller retries)."""


# Spans tenants: one LRS for the platform, and a batch is the oldest statements of any tenant.
@scopes_disabled()
def statements_forward_all() -> int:
    """Send statements not yet forwarded to the LRS, oldest first, in batches; each batch is
    stamped forwarded only once the LRS has taken it. Raises ForwardFailed on the first batch
    the LRS did not take (its statements' attempts counted); returns how many were sent."""
    if not settings.LRS_ENDPOINT:
        return 0
    sent = 0
    while True:
        batch = _next_batch()
        if not batch:
            return sent
        _post(batch)
        Statement.objects.filter(id__in=[s.id for s in batch]).update(forwarded_at=timezone.now())
        sent += len(batch)


def _next_batch() -> list[Statement]:
    return list(
        Statement.objects.filter(forwarded_at__isnull=True)
        .select_related("actor", "tenant")
        .order_by("id")[:FORWARD_BATCH]
    )


def _post(batch: list[Statement]) -> None:
    docs = [statement_json(s, actor_email=s.actor.email, tenant_slug=s.tenant.slug) for s in batch]
    url = settings.LRS_ENDPOINT.rstrip("/") + "/statements"
    auth = (settings.LRS_USERNAME, settings.LRS_PASSWORD) if settings.LRS_USERNAME else None
    try:
        response = httpx.post(
            url,
            json=docs,
            auth=auth,
            headers={"X-Experience-API-Version": VERSION},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        _count_attempt(batch)
        raise ForwardFailed(f"The LRS at {url} could not be reached: {exc}") from exc
    if response.status_code >= 300:
        _count_attempt(batch)
        raise ForwardFailed(f"The LRS at {url} answered {response.status_code}.")


def _count_attempt(batch: list[Statement]) -> None:
    with transaction.atomic():
        Statement.objects.filter(id__in=[s.id for s in batch]).update(
            forward_attempts=F("forward_attempts") + 1
        )
