"""Celery tasks of learning records: fitting knowledge tracing, forwarding statements to an LRS."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.learning.models import Statement
from apps.learning.tracing import bkt_fit_tenant
from apps.learning.xapi import VERSION, statement_json
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

FORWARD_BATCH = 200


@shared_task(name="apps.learning.tasks.bkt_fit", ignore_result=True)
def bkt_fit(tenant_id: str) -> dict:
    """Fit one tenant's BKT parameters (on demand: teachers' "refit" and the API)."""
    summary = bkt_fit_tenant(tenant_id)
    logger.info("BKT fitted for tenant %s: %s", tenant_id, summary)
    return summary.__dict__


def bkt_fit_on_commit(tenant_id) -> None:
    """Queue a fit of the tenant once the current transaction commits (teachers' requests)."""
    tenant_id = str(tenant_id)
    transaction.on_commit(lambda: bkt_fit.delay(tenant_id))


@shared_task(name="apps.learning.tasks.bkt_fit_all", ignore_result=True)
def bkt_fit_all() -> int:
    """Periodic (beat): one fit task per active tenant."""
    with scopes_disabled():
        ids = list(Tenant.objects.filter(is_active=True).values_list("id", flat=True))
    for tenant_id in ids:
        bkt_fit.delay(str(tenant_id))
    return len(ids)


class ForwardFailed(Exception):
    pass


@shared_task(
    name="apps.learning.tasks.statements_forward",
    ignore_result=True,
    autoretry_for=(ForwardFailed,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=None,
)
def statements_forward() -> int:
    """Send statements not yet forwarded to the LRS, oldest first, in batches; each batch is
    stamped forwarded only once the LRS has taken it. A failure raises ForwardFailed, which
    Celery retries with backoff (the beat schedule also calls this every minute)."""
    if not settings.LRS_ENDPOINT:
        return 0
    sent = 0
    while True:
        batch = _next_batch()
        if not batch:
            return sent
        _post(batch)
        with scopes_disabled():
            Statement.objects.filter(id__in=[s.id for s in batch]).update(
                forwarded_at=timezone.now()
            )
        sent += len(batch)


@scopes_disabled()
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


@scopes_disabled()
def _count_attempt(batch: list[Statement]) -> None:
    from django.db.models import F

    with transaction.atomic():
        Statement.objects.filter(id__in=[s.id for s in batch]).update(
            forward_attempts=F("forward_attempts") + 1
        )
