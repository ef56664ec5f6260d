"""Fair-share dispatch on the database: a tenant's or a learner's backlog does not hold back the
others, and no tenant runs more jobs at once than its quota allows.

The rounds are driven directly with a fixed pool size; a released job is run to its end through
the worker's own lease calls (claim, finish), with no broker or worker.
"""

import copy
import threading

import pytest
import redis
from django.db import connection
from django.db.models import Count
from django_scopes import scopes_disabled

from apps.jobs.lease import claim_finish, job_claim
from apps.jobs.models import Job
from apps.quotas.dispatcher import RELEASED, dispatch_round
from apps.quotas.models import TenantQuota
from tests.conftest import api_client_for, wait_for
from tests.factories import JobFactory, SubmissionFactory, UserFactory
from tests.jobs.faults_support import RedisServer, this_process_on_redis
from tests.snapshots import db_snapshot
from workers.runtime.templates import TEMPLATES


def queue_jobs(world, *, learner, n: int) -> list:
    """`n` queued jobs of `learner` on the world's assignment, oldest first; their ids."""
    return [
        JobFactory(
            submission=SubmissionFactory(assignment=world.assignment, learner=learner, attempt=i)
        ).id
        for i in range(1, n + 1)
    ]


def limit_set(world, limit: int) -> None:
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=world.tenant).update(max_running_jobs=limit)


def run_to_end(job_id) -> None:
    """What a worker does with a released job: claim it, then finish it."""
    with scopes_disabled():
        claim = job_claim(job_id=job_id, owner="test-worker:1", device="cpu")
        assert claim is not None
        claim_finish(claim, state="succeeded", final_payload={})


def drain(in_flight: list, *, check=None) -> list:
    """End the oldest job in flight and run a round, until nothing is in flight; returns the
    jobs released on the way, in order. `check()` runs after every round."""
    released = []
    while in_flight:
        run_to_end(in_flight.pop(0))
        now_released = dispatch_round(pool="gpu")
        in_flight += now_released
        released += now_released
        if check is not None:
            check()
    return released


def test_one_job_of_another_tenant_goes_before_the_200_waiting_of_the_first(
    tenant_a, tenant_b, settings
):
    settings.GPU_POOL_SLOTS = 3
    limit_set(tenant_a, 5)  # above the pool's size: only the pool holds tenant A back
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=200)
    first = dispatch_round(pool="gpu")
    assert first == a_jobs[:3]
    b_job = queue_jobs(tenant_b, learner=UserFactory(), n=1)[0]
    assert dispatch_round(pool="gpu") == []  # the pool is full

    # B's job takes the first slot that frees, before every job A still had waiting.
    assert drain(first) == [b_job, *a_jobs[3:]]
    with scopes_disabled():
        states = set(Job.objects.filter(id__in=[b_job, *a_jobs]).values_list("state", flat=True))
    assert states == {"succeeded"}


def test_a_learner_who_submits_once_goes_before_the_50_waiting_of_a_classmate(tenant_a, settings):
    settings.GPU_POOL_SLOTS = 2
    limit_set(tenant_a, 4)
    busy = queue_jobs(tenant_a, learner=UserFactory(), n=50)
    first = dispatch_round(pool="gpu")
    assert first == busy[:2]
    other = queue_jobs(tenant_a, learner=UserFactory(), n=1)[0]
    assert dispatch_round(pool="gpu") == []

    assert drain(first) == [other, *busy[2:]]


def test_no_tenant_ever_runs_more_jobs_at_once_than_its_limit(tenant_a, tenant_b, settings):
    settings.GPU_POOL_SLOTS = 10
    limit_set(tenant_a, 2)
    limit_set(tenant_b, 3)
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=20)
    b_jobs = queue_jobs(tenant_b, learner=UserFactory(), n=20)

    first = dispatch_round(pool="gpu")
    # Turns by jobs in flight, then who waited longest, each up to its limit; 5 of 10 slots.
    assert first == [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1], b_jobs[2]]
    assert dispatch_round(pool="gpu") == []
    peaks = {tenant_a.tenant.id: 0, tenant_b.tenant.id: 0}

    def in_flight_within_limits() -> None:
        with scopes_disabled():
            counts = Job.objects.filter(RELEASED).values_list("tenant_id").annotate(n=Count("id"))
            for tenant_id, n in counts.order_by():
                peaks[tenant_id] = max(peaks[tenant_id], n)

    released = drain(first, check=in_flight_within_limits)
    assert sorted(released) == sorted(a_jobs[2:] + b_jobs[3:])
    assert peaks == {tenant_a.tenant.id: 2, tenant_b.tenant.id: 3}


def test_a_round_with_nothing_waiting_or_no_free_slot_writes_nothing(tenant_a, settings):
    settings.GPU_POOL_SLOTS = 1
    before = db_snapshot()
    assert dispatch_round(pool="gpu") == []  # nothing waits
    assert db_snapshot() == before
    jobs = queue_jobs(tenant_a, learner=UserFactory(), n=2)
    assert dispatch_round(pool="gpu") == jobs[:1]
    before = db_snapshot()
    assert dispatch_round(pool="gpu") == []  # one slot, taken
    assert db_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_rounds_run_at_the_same_time_release_each_job_once_within_pool_and_limits(
    tenant_a, tenant_b, settings, tmp_path
):
    """Four rounds at once on PostgreSQL (a submit and three job ends, say), publishing to a
    private Redis that no worker reads: the pool's 4 slots are filled once, by turns."""
    settings.GPU_POOL_SLOTS = 4
    limit_set(tenant_a, 3)
    limit_set(tenant_b, 3)
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=10)
    b_jobs = queue_jobs(tenant_b, learner=UserFactory(), n=10)
    server = RedisServer(tmp_path)
    server.start()
    try:
        with this_process_on_redis(server.url):
            start = threading.Barrier(4)
            results: list = []

            def one_round() -> None:
                start.wait()
                try:
                    results.append(dispatch_round(pool="gpu"))
                finally:
                    connection.close()

            threads = [threading.Thread(target=one_round) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert len(results) == 4
            released = [job_id for result in results for job_id in result]
            assert sorted(map(str, released)) == sorted(
                map(str, [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1]])
            )
            assert sorted(len(result) for result in results) == [0, 0, 0, 4]
            # Each released job was published once, after its round committed.
            assert redis.Redis.from_url(server.url).llen("gpu") == 4
        with scopes_disabled():
            marked = Job.objects.filter(dispatched_at__isnull=False, state="queued")
            assert sorted(map(str, marked.values_list("id", flat=True))) == sorted(
                map(str, released)
            )
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_with_a_real_worker_the_other_tenants_job_starts_before_the_backlog(
    celery_worker_process, tenant_a, tenant_b
):
    """Submits through the API; one worker (one slot); the rounds after each job's end run in
    the worker. Every job of tenant A still waiting when B submits starts after B's."""
    spec = copy.deepcopy(TEMPLATES["xor"].spec)
    spec["training"]["epochs"] = 20

    def submit(world) -> str:
        response = api_client_for(world.learner.user).post(
            f"/api/v1/t/{world.tenant.slug}/assignments/{world.assignment.id}/submissions/",
            {"kind": "spec", "spec": spec},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()["job"]["id"]

    a_jobs = [submit(tenant_a) for _ in range(4)]  # attempts 2 to 5
    b_job = submit(tenant_b)
    with scopes_disabled():
        still_waiting = list(
            Job.objects.filter(id__in=a_jobs, dispatched_at__isnull=True).values_list(
                "id", flat=True
            )
        )
    assert still_waiting  # the worker is busy with A's first job: A's others wait

    def all_ended() -> bool:
        with scopes_disabled():
            return Job.objects.filter(id__in=[*a_jobs, b_job], state="succeeded").count() == 5

    log = celery_worker_process["log"]
    wait_for(all_ended, timeout=300, interval=0.2,
             message=lambda: f"all five jobs succeeded\n{log.read_text()[-3000:]}")  # fmt: skip
    with scopes_disabled():
        started = dict(Job.objects.filter(id__in=[*a_jobs, b_job]).values_list("id", "started_at"))
    started = {str(job_id): at for job_id, at in started.items()}
    assert all(started[b_job] < started[str(job_id)] for job_id in still_waiting)
