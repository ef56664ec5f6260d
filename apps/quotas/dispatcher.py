"""The dispatcher: releases a pool's waiting jobs to Celery by the fair-share policy.

Jobs wait in the database (queued, no `dispatched_at`). A round, serialised per pool, counts
the free slots (the pool's size less the jobs released and not finished), lets the policy
(`apps.quotas.fairshare`) choose, marks the chosen jobs released and publishes them after
commit. Rounds run after the commit that queued a job, after each job's end, and from the reaper.
"""

import logging
import time
import zlib
from collections import defaultdict
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.jobs.dispatch import job_dispatch
from apps.jobs.models import Job
from apps.jobs.states import JobState
from apps.quotas.fairshare import FairShare, QueuedJob
from apps.quotas.models import TenantQuota
from workers.heartbeat import heartbeats_read

log = logging.getLogger(__name__)

RELEASED = Q(state=JobState.RUNNING) | Q(state=JobState.QUEUED, dispatched_at__isnull=False)


def pool_slots(pool: str) -> int:
    """How many jobs the pool runs at once: GPU_POOL_SLOTS for "gpu" when set, else one per
    live worker consuming the pool's queue (at least 1, so a job waits for the first worker)."""
    if pool == "gpu" and settings.GPU_POOL_SLOTS:
        return settings.GPU_POOL_SLOTS
    try:
        beats = heartbeats_read()
    except redis.RedisError as exc:  # Redis down: so is the broker, nothing can be published
        log.warning("worker heartbeats unreadable (%s); counting one slot", exc)
        return 1
    now = time.time()
    live = sum(
        1
        for beat in beats.values()
        if pool in beat.get("queues", ()) and now - beat["at"] <= settings.WORKER_HEARTBEAT_MAX_AGE
    )
    return max(1, live)


# One lock for every pool: a tenant's concurrency limit spans its pools.
ROUND_LOCK_KEY = zlib.crc32(b"aula.dispatch")


def _round_lock() -> None:
    """Serialise rounds until the transaction ends. SQLite's IMMEDIATE transactions
    (config/settings.py) already serialise every writer."""
    if connection.vendor == "postgresql":
        key = ROUND_LOCK_KEY
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _policy_for(waiting: list[tuple], now) -> FairShare:
    """The policy's state: the waiting jobs, and for their tenants and learners the jobs in
    flight (released, not finished), the concurrency limit and the recent device time."""
    default_limit = settings.DEFAULT_TENANT_QUOTA["max_running_jobs"]
    policy = FairShare(default_limit=default_limit)
    tenants = {tenant_id for _, tenant_id, _ in waiting}
    for order, (job_id, tenant_id, learner_id) in enumerate(waiting):
        policy.add(QueuedJob(id=job_id, tenant=tenant_id, learner=learner_id, order=order))
    flight = defaultdict(int)
    usage = defaultdict(float)
    in_flight = (
        Job.objects.filter(RELEASED, tenant_id__in=tenants)
        .values_list("tenant_id", "submission__learner_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for tenant_id, learner_id, n in in_flight:
        flight[tenant_id, learner_id] = n
    window = now - timedelta(seconds=settings.FAIR_SHARE_USAGE_WINDOW_SECONDS)
    held = ExpressionWrapper(F("finished_at") - F("run_started_at"), output_field=DurationField())
    used = (
        Job.objects.filter(
            tenant_id__in=tenants, finished_at__gte=window, run_started_at__isnull=False
        )
        .values_list("tenant_id", "submission__learner_id")
        .annotate(seconds=Sum(held))
        .order_by()
    )
    for tenant_id, learner_id, seconds in used:
        usage[tenant_id, learner_id] = seconds.total_seconds() if seconds else 0.0
    limits = dict(
        TenantQuota.objects.filter(tenant_id__in=tenants).values_list(
            "tenant_id", "max_running_jobs"
        )
    )
    tenant_flight, tenant_usage = defaultdict(int), defaultdict(float)
    for (tenant_id, _), n in flight.items():
        tenant_flight[tenant_id] += n
    for (tenant_id, _), seconds in usage.items():
        tenant_usage[tenant_id] += seconds
    for tenant_id in tenants:
        limit = limits.get(tenant_id, default_limit)
        policy.tenant_set(tenant_id, limit=limit, in_flight=tenant_flight[tenant_id],
                          usage=tenant_usage[tenant_id])  # fmt: skip
    for tenant_id, learner_id in set(flight) | set(usage):
        policy.learner_set(tenant_id, learner_id, in_flight=flight[tenant_id, learner_id],
                           usage=usage[tenant_id, learner_id])  # fmt: skip
    return policy


@scopes_disabled()
def dispatch_round(*, pool: str = "gpu", waiting_before=None) -> list:
    """Release the pool's next jobs; returns their ids in release order. They are published
    after the commit. `waiting_before`: consider only jobs last written before then."""
    with transaction.atomic():
        _round_lock()
        busy = Job.objects.filter(RELEASED, queue=pool).count()
        free = pool_slots(pool) - busy
        if free <= 0:
            return []
        waiting = Job.objects.filter(queue=pool, state=JobState.QUEUED, dispatched_at__isnull=True)
        if waiting_before is not None:
            waiting = waiting.filter(updated_at__lt=waiting_before)
        rows = list(
            waiting.order_by("created_at", "id").values_list(
                "id", "tenant_id", "submission__learner_id"
            )
        )
        if not rows:
            return []
        now = timezone.now()
        chosen = [job.id for job in _policy_for(rows, now).release(free)]
        if not chosen:
            return []
        Job.objects.filter(id__in=chosen, state=JobState.QUEUED, dispatched_at__isnull=True).update(
            dispatched_at=now
        )
        marked = dict(
            Job.objects.filter(id__in=chosen, dispatched_at=now).values_list("id", "tenant_id")
        )
        released = [(job_id, marked[job_id]) for job_id in chosen if job_id in marked]

        def publish() -> None:
            for job_id, tenant_id in released:
                job_dispatch(tenant_id=tenant_id, job_id=job_id, queue=pool, released_at=now)

        transaction.on_commit(publish)
    return [job_id for job_id, _ in released]


def dispatch_round_safely(pool: str) -> None:
    """A round that never raises: it runs after a commit that already happened (a submit, a
    job's end), and the reaper's round catches up on anything it left."""
    try:
        dispatch_round(pool=pool)
    except Exception:
        log.exception("dispatch round of pool %s failed; the reaper will run another", pool)


def dispatch_round_on_commit(*, pool: str) -> None:
    transaction.on_commit(lambda: dispatch_round_safely(pool))
