"""What the administrators' console reads: the workers (from their Redis heartbeats, with the
job each one holds) and the depth of the job queue per tenant and per pool."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Q
from django_scopes import scopes_disabled

from apps.jobs.models import Job
from apps.jobs.states import JobState
from workers.heartbeat import heartbeats_read


def now() -> float:
    """The clock worker ages are measured against (a seam for tests)."""
    return time.time()


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    queues: list[str]
    pid: int
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


def queue_depth() -> dict[str, list[dict]]:
    """Queued and running jobs per tenant (tenants with none are left out) and per pool."""
    with scopes_disabled():
        live = Job.objects.filter(state__in=[JobState.QUEUED, JobState.RUNNING])
        tenants = list(
            live.values("tenant__slug", "tenant__name").annotate(**_COUNTS).order_by("tenant__slug")
        )
        pools = list(live.values("queue").annotate(**_COUNTS).order_by("queue"))
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
            {"pool": row["queue"], "queued": row["queued"], "running": row["running"]}
            for row in pools
        ],
    }
