"""Celery tasks of learning records: fitting knowledge tracing, forwarding statements to an LRS,
observing withheld grades after their due date."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.learning import services
from apps.learning.lrs import ForwardFailed, statements_forward_all
from apps.learning.tracing import bkt_fit_tenant
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(name="apps.learning.tasks.bkt_fit", ignore_result=True)
def bkt_fit(tenant_id: str) -> dict:
    """Fit one tenant's BKT parameters (on demand: teachers' "refit" and the API)."""
    summary = bkt_fit_tenant(tenant_id)
    logger.info("BKT fitted for tenant %s: %s", tenant_id, summary)
    return summary.__dict__


@shared_task(name="apps.learning.tasks.bkt_fit_all", ignore_result=True)
def bkt_fit_all() -> int:
    """Periodic (beat): one fit task per active tenant."""
    ids = list(Tenant.objects.filter(is_active=True).values_list("id", flat=True))
    for tenant_id in ids:
        bkt_fit.delay(str(tenant_id))
    return len(ids)


@shared_task(name="apps.learning.tasks.withheld_grades_observe", ignore_result=True)
def withheld_grades_observe() -> int:
    """Periodic (beat): mastery's observations of the grades withheld with nothing shown, once
    their due date has passed (services.withheld_grades_observe)."""
    return services.withheld_grades_observe()


@shared_task(
    name="apps.learning.tasks.statements_forward",
    ignore_result=True,
    autoretry_for=(ForwardFailed,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=None,
)
def statements_forward() -> int:
    """Forward what the LRS has not taken yet (apps.learning.lrs); a ForwardFailed is retried
    with backoff (the beat schedule also calls this every minute)."""
    return statements_forward_all()
