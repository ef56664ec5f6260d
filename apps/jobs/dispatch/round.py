"""The dispatcher: releases waiting jobs to the worker pools by the fair-share policy.

Jobs wait in the database (queued, no `dispatched_at`). A round, serialised by one lock, counts
each pool's free slots (its size less the jobs released to it and not finished); pool by pool,
it lets the policy (`fairshare.py`) choose among the waiting jobs of tenants whose quota names
that pool, marks the chosen jobs released to it and publishes them after commit. Rounds run after
the commit that queued a job, after each job's end, and from the reaper.
"""

import logging
import time
import zlib
from collections import defaultdict
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.core.heartbeat import heartbeats_read
from apps.jobs.dispatch.fairshare import FairShare, QueuedJob
from apps.jobs.dispatch.publish import job_publish
from apps.jobs.models import Job
from apps.jobs.states import JobState
from apps.quotas.models import TenantQuota, default_pools

log = logging.getLogger(__name__)

RELEASED = Q(state=JobState.RUNNING) | Q(state=JobState.QUEUED, dispatched_at__isnull=False)


def pool_slots(pool: str) -> int:
    """How many jobs the pool runs at once: POOL_SLOTS[pool] when set, else one per live worker
    consuming the pool's queue (at least 1, so a job waits for the first worker)."""
    if settings.POOL_SLOTS.get(pool):
        return settings.POOL_SLOTS[pool]
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


def _policy_for(waiting: list[tuple], now, limits: dict) -> FairShare:
    """The policy's state: the waiting jobs, and for their tenants and learners the jobs in
    flight (released, not finished), the concurrency limit (`limits`, for tenants with a quota
    row) and the recent device time."""
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
    tenant_flight, tenant_usage = defaultdict(int), defaultdict(float)
    for (tenant_id, _), n in flight.items():
        tenant_flight[tenant_id] += n
    for (tenant_id, _), seconds in usage.items():
        tenant_usage[tenant_id] += seconds
    for tenant_id in tenants:
        limit = limits.get(tenant_id, default_limit)
        policy.tenant_set(
            tenant_id,
            limit=limit,
            in_flight=tenant_flight[tenant_id],
            usage=tenant_usage[tenant_id],
        )
    for tenant_id, learner_id in set(flight) | set(usage):
        policy.learner_set(
            tenant_id,
            learner_id,
            in_flight=flight[tenant_id, learner_id],
            usage=usage[tenant_id, learner_id],
        )
    return policy


@scopes_disabled()  # a round shares the pools among every tenant's jobs
def dispatch_round(*, waiting_before=None) -> list:
    """Release the next jobs into the pools' free slots; returns their ids in release order.
    They are published after the commit. `waiting_before`: consider only jobs last written
    before then."""
    with transaction.atomic():
        _round_lock()
        busy = dict(
            Job.objects.filter(RELEASED).values_list("queue").annotate(n=Count("id")).order_by()
        )
        free = {pool: pool_slots(pool) - busy.get(pool, 0) for pool in settings.WORKER_POOLS}
        free = {pool: n for pool, n in free.items() if n > 0}
        if not free:
            return []
        waiting = Job.objects.filter(state=JobState.QUEUED, dispatched_at__isnull=True)
        if waiting_before is not None:
            waiting = waiting.filter(updated_at__lt=waiting_before)
        # A learner's jobs leave in order, so no more than the free slots of each are needed:
        # the rows read grow with the learners waiting, not with their backlogs.
        in_turn = Window(
            RowNumber(),
            partition_by=[F("submission__learner_id")],
            order_by=[F("created_at"), F("id")],
        )
        rows = list(
            waiting.annotate(turn=in_turn)
            .filter(turn__lte=sum(free.values()))
            .order_by("created_at", "id")
            .values_list("id", "tenant_id", "submission__learner_id")
        )
        if not rows:
            return []
        quotas = TenantQuota.objects.filter(tenant_id__in={tenant for _, tenant, _ in rows})
        pools_of, limits = {}, {}
        for tenant_id, pools, limit in quotas.values_list("tenant_id", "pools", "max_running_jobs"):
            pools_of[tenant_id], limits[tenant_id] = pools, limit
        now = timezone.now()
        released: list[tuple] = []
        for pool, slots in free.items():
            eligible = [row for row in rows if pool in pools_of.get(row[1], default_pools())]
            if not eligible:
                continue
            # In flight is read again for each pool: a tenant's limit spans its pools.
            chosen = [job.id for job in _policy_for(eligible, now, limits).release(slots)]
            Job.objects.filter(
                id__in=chosen, state=JobState.QUEUED, dispatched_at__isnull=True
            ).update(dispatched_at=now, queue=pool)
            marked = dict(
                Job.objects.filter(id__in=chosen, dispatched_at=now).values_list("id", "tenant_id")
            )
            released += [(job_id, marked[job_id], pool) for job_id in chosen if job_id in marked]
            taken = set(chosen)
            rows = [row for row in rows if row[0] not in taken]

        def publish() -> None:
            for job_id, tenant_id, pool in released:
                job_publish(tenant_id=tenant_id, job_id=job_id, queue=pool, released_at=now)

        transaction.on_commit(publish)
    return [job_id for job_id, _, _ in released]


@scopes_disabled()  # every tenant's jobs count: the submit's own scope would hide them
def pool_for_new_job(*, tenant_id, pools: list[str], limit: int) -> str | None:
    """The fast path of a submit, called in its transaction before the job is written: the pool
    that a round run after the commit would release the new job to, when that is already
    certain (no other job waits in any pool, the tenant has fewer than `limit` jobs in flight,
    one of its `pools` has a free slot), else None, and the submit runs a round after its commit.

    It takes the round lock, held until the submit commits, so neither a round nor another
    submit can count the same free slot. One query over the jobs in flight (an index on state)."""
    _round_lock()
    usable = [pool for pool in settings.WORKER_POOLS if pool in pools]
    if not usable:
        return None
    busy = {f"busy_{n}": Count("id", filter=RELEASED & Q(queue=p)) for n, p in enumerate(usable)}
    counts = Job.objects.filter(state__in=[JobState.QUEUED, JobState.RUNNING]).aggregate(
        waiting=Count("id", filter=Q(state=JobState.QUEUED, dispatched_at__isnull=True)),
        tenant=Count("id", filter=RELEASED & Q(tenant_id=tenant_id)),
        **busy,
    )
    if counts["waiting"] or counts["tenant"] >= limit:
        return None
    for n, pool in enumerate(usable):
        if counts[f"busy_{n}"] < pool_slots(pool):
            return pool
    return None


def dispatch_round_safely() -> None:
    """A round that never raises: it runs after a commit that already happened (a submit, a
    job's end), and the reaper's round catches up on anything it left."""
    try:
        dispatch_round()
    except Exception:
        log.exception("dispatch round failed; the reaper will run another")


def dispatch_round_on_commit() -> None:
    transaction.on_commit(dispatch_round_safely)
