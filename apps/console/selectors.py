"""What the administrators' console reads: the workers (from their Redis heartbeats, with the
job each one holds) and the depth of the job queue per tenant and per pool."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django_scopes import scopes_disabled

from apps.core.heartbeat import heartbeats_read
from apps.jobs.models import Job
from apps.jobs.states import JobState
from apps.quotas.selectors import quota_list_with_balances
from apps.tenants.models import Tenant


def now() -> float:
    """The clock worker ages are measured against (a seam for tests)."""
    return time.time()


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    queues: list[str]
    pid: int
    device: str
    heartbeat_age: float
    alive: bool
    current_job: Job | None


def worker_list() -> list[WorkerStatus]:
    """Every worker with a heartbeat, by name. Its current job is the running job it leases:
    Job.lease_owner is "<celery hostname>:<pid>"."""
    beats = heartbeats_read()
    at = now()
    with scopes_disabled():
        running = list(
            Job.objects.filter(state=JobState.RUNNING)
            .exclude(lease_owner="")
            .select_related("tenant")
            .order_by("-started_at")
        )
    workers = []
    for name, beat in sorted(beats.items()):
        age = max(0.0, at - beat["at"])
        job = next((j for j in running if j.lease_owner.rsplit(":", 1)[0] == name), None)
        workers.append(
            WorkerStatus(
                name=name,
                queues=list(beat.get("queues", [])),
                pid=beat.get("pid"),
                device=beat.get("device", "unknown"),
                heartbeat_age=round(age, 1),
                alive=age <= settings.WORKER_HEARTBEAT_MAX_AGE,
                current_job=job,
            )
        )
    return workers


_COUNTS = {
    "queued": Count("id", filter=Q(state=JobState.QUEUED)),
    "running": Count("id", filter=Q(state=JobState.RUNNING)),
}


@dataclass(frozen=True)
class TenantRow:
    tenant: Tenant
    quota: object
    balance: object


def tenant_row_list(*, page: int | str | None = None, per_page: int = 25):
    """A page of tenants by name, each with its quota and this period's balance."""
    with scopes_disabled():
        tenants = Paginator(Tenant.objects.order_by("name", "slug"), per_page).get_page(page)
        balances = quota_list_with_balances(tenants=tenants.object_list)
    tenants.object_list = [TenantRow(t, *balances[t.id]) for t in tenants.object_list]
    return tenants


def queue_depth_get() -> dict[str, list[dict]]:
    """Queued and running jobs per tenant (tenants with none are left out), and per worker pool
    its slots, the jobs running on it and those released to it that no worker has started yet
    (jobs still waiting for the dispatcher are in no pool yet)."""
    from apps.jobs.dispatch.round import pool_slots

    with scopes_disabled():
        live = Job.objects.filter(state__in=[JobState.QUEUED, JobState.RUNNING])
        tenants = list(
            live.values("tenant__slug", "tenant__name").annotate(**_COUNTS).order_by("tenant__slug")
        )
        released = live.filter(Q(state=JobState.RUNNING) | Q(dispatched_at__isnull=False))
        per_pool = {row["queue"]: row for row in released.values("queue").annotate(**_COUNTS)}
    pools = list(settings.WORKER_POOLS) + sorted(set(per_pool) - set(settings.WORKER_POOLS))
    return {
        "tenants": [
            {
                "tenant": row["tenant__slug"],
                "name": row["tenant__name"],
                "queued": row["queued"],
                "running": row["running"],
            }
            for row in tenants
        ],
        "pools": [
            {
                "pool": pool,
                "slots": pool_slots(pool) if pool in settings.WORKER_POOLS else 0,
                "running": per_pool.get(pool, {}).get("running", 0),
                "released": per_pool.get(pool, {}).get("queued", 0),
            }
            for pool in pools
        ],
    }
