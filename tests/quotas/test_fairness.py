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

from apps.jobs.dispatch import round as dispatcher
from apps.jobs.dispatch.round import RELEASED, dispatch_round
from apps.jobs.lease import claim_finish, job_claim
from apps.jobs.models import Job
from apps.quotas.models import TenantQuota
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, wait_for
from tests.factories import JobFactory, SubmissionFactory, UserFactory
from tests.jobs.faults_support import RedisServer, this_process_on_redis
from tests.quotas.ledger_support import submit
from tests.snapshots import db_snapshot


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
        now_released = dispatch_round()
        in_flight += now_released
        released += now_released
        if check is not None:
            check()
    return released


def test_one_job_of_another_tenant_goes_before_the_200_waiting_of_the_first(
    tenant_a, tenant_b, settings
):
    settings.POOL_SLOTS = {"gpu": 3}
    limit_set(tenant_a, 5)  # above the pool's size: only the pool holds tenant A back
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=200)
    first = dispatch_round()
    assert first == a_jobs[:3]
    b_job = queue_jobs(tenant_b, learner=UserFactory(), n=1)[0]
    assert dispatch_round() == []  # the pool is full

    # B's job takes the first slot that frees, before every job A still had waiting.
    assert drain(first) == [b_job, *a_jobs[3:]]
    with scopes_disabled():
        states = set(Job.objects.filter(id__in=[b_job, *a_jobs]).values_list("state", flat=True))
    assert states == {"succeeded"}


def test_a_learner_who_submits_once_goes_before_the_50_waiting_of_a_classmate(tenant_a, settings):
    settings.POOL_SLOTS = {"gpu": 2}
    limit_set(tenant_a, 4)
    busy = queue_jobs(tenant_a, learner=UserFactory(), n=50)
    first = dispatch_round()
    assert first == busy[:2]
    other = queue_jobs(tenant_a, learner=UserFactory(), n=1)[0]
    assert dispatch_round() == []

    assert drain(first) == [other, *busy[2:]]


def test_no_tenant_ever_runs_more_jobs_at_once_than_its_limit(tenant_a, tenant_b, settings):
    settings.POOL_SLOTS = {"gpu": 10}
    limit_set(tenant_a, 2)
    limit_set(tenant_b, 3)
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=20)
    b_jobs = queue_jobs(tenant_b, learner=UserFactory(), n=20)

    first = dispatch_round()
    # Turns by jobs in flight, then who waited longest, each up to its limit; 5 of 10 slots.
    assert first == [a_jobs[0], b_jobs[0], a_jobs[1], b_jobs[1], b_jobs[2]]
    assert dispatch_round() == []
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
    settings.POOL_SLOTS = {"gpu": 1}
    before = db_snapshot()
    assert dispatch_round() == []  # nothing waits
    assert db_snapshot() == before
    jobs = queue_jobs(tenant_a, learner=UserFactory(), n=2)
    assert dispatch_round() == jobs[:1]
    before = db_snapshot()
    assert dispatch_round() == []  # one slot, taken
    assert db_snapshot() == before


def pools_set(world, pools: list) -> None:
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=world.tenant).update(pools=pools)


def released_to(job_ids) -> dict:
    with scopes_disabled():
        jobs = Job.objects.filter(id__in=job_ids, dispatched_at__isnull=False)
        return dict(jobs.values_list("id", "queue"))


def test_jobs_go_only_to_the_pools_their_tenants_quota_names(
    tenant_a, tenant_b, settings, tmp_path, django_capture_on_commit_callbacks
):
    """Tenant A may use "gpu" only, B "gpu-large" only; each pool's free slots go to the
    tenants allowed there, whatever waits elsewhere, and each job is published to its pool."""
    settings.WORKER_POOLS = ["gpu", "gpu-large"]
    settings.POOL_SLOTS = {"gpu": 2, "gpu-large": 3}
    limit_set(tenant_a, 10)
    limit_set(tenant_b, 10)
    pools_set(tenant_b, ["gpu-large"])
    a_jobs = queue_jobs(tenant_a, learner=UserFactory(), n=5)
    b_jobs = queue_jobs(tenant_b, learner=UserFactory(), n=5)
    server = RedisServer(tmp_path)
    server.start()
    try:
        with this_process_on_redis(server.url), django_capture_on_commit_callbacks(execute=True):
            released = dispatch_round()
        assert released == [*a_jobs[:2], *b_jobs[:3]]
        assert released_to(released) == {
            **dict.fromkeys(a_jobs[:2], "gpu"),
            **dict.fromkeys(b_jobs[:3], "gpu-large"),
        }
        queues = redis.Redis.from_url(server.url)
        assert (queues.llen("gpu"), queues.llen("gpu-large")) == (2, 3)
    finally:
        server.stop()
    assert dispatch_round() == []  # both pools are full; nobody crosses to the other

    # A's job ends: its "gpu" slot goes to A again, not to B's backlog.
    run_to_end(a_jobs[0])
    assert dispatch_round() == [a_jobs[2]]


def test_a_tenant_with_two_pools_fills_both_and_its_limit_spans_them(tenant_a, settings):
    settings.WORKER_POOLS = ["gpu", "gpu-large"]
    settings.POOL_SLOTS = {"gpu": 2, "gpu-large": 2}
    limit_set(tenant_a, 3)
    pools_set(tenant_a, ["gpu", "gpu-large"])
    jobs = queue_jobs(tenant_a, learner=UserFactory(), n=6)
    released = dispatch_round()
    assert released == jobs[:3]  # 4 slots, a limit of 3
    assert released_to(released) == {jobs[0]: "gpu", jobs[1]: "gpu", jobs[2]: "gpu-large"}
    assert dispatch_round() == []


def test_a_round_reads_only_the_next_jobs_of_each_learner(tenant_a, settings, monkeypatch):
    """The waiting rows a round reads are bounded by the free slots per learner, not by the
    learners' backlogs."""
    settings.POOL_SLOTS = {"gpu": 2}
    limit_set(tenant_a, 10)
    first, second = UserFactory(), UserFactory()
    first_jobs = queue_jobs(tenant_a, learner=first, n=30)
    second_jobs = queue_jobs(tenant_a, learner=second, n=30)
    seen = []
    policy_for = dispatcher._policy_for

    def recording_policy_for(rows, now, limits):
        seen.append([job_id for job_id, _, _ in rows])
        return policy_for(rows, now, limits)

    monkeypatch.setattr(dispatcher, "_policy_for", recording_policy_for)
    assert dispatch_round() == [first_jobs[0], second_jobs[0]]
    assert seen == [[*first_jobs[:2], *second_jobs[:2]]]


@pytest.mark.django_db(transaction=True)
def test_rounds_run_at_the_same_time_release_each_job_once_within_pool_and_limits(
    tenant_a, tenant_b, settings, tmp_path
):
    """Four rounds at once on PostgreSQL (a submit and three job ends, say), publishing to a
    private Redis that no worker reads: the pool's 4 slots are filled once, by turns."""
    settings.POOL_SLOTS = {"gpu": 4}
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
                    results.append(dispatch_round())
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
    wait_for(
        all_ended,
        timeout=300,
        interval=0.2,
        message=lambda: f"all five jobs succeeded\n{log.read_text()[-3000:]}",
    )
    with scopes_disabled():
        started = dict(Job.objects.filter(id__in=[*a_jobs, b_job]).values_list("id", "started_at"))
    started = {str(job_id): at for job_id, at in started.items()}
    assert all(started[b_job] < started[str(job_id)] for job_id in still_waiting)


# --- The submit's fast path: released at once only when a round would do exactly that --------


def _submitted(world):
    job = submit(world, world.learner.user).job
    with scopes_disabled():
        job.refresh_from_db()
    return job


def test_a_submit_to_an_idle_pool_releases_its_job_at_once(tenant_a, settings):
    settings.POOL_SLOTS = {"gpu": 1}
    job = _submitted(tenant_a)
    assert (job.queue, job.dispatched_at is not None) == ("gpu", True)


def test_a_submit_waits_for_a_round_when_another_job_waits(tenant_a, tenant_b, settings):
    settings.POOL_SLOTS = {"gpu": 5}
    older = queue_jobs(tenant_b, learner=UserFactory(), n=1)[0]  # waiting: no round ran yet
    job = _submitted(tenant_a)
    assert job.dispatched_at is None
    # The round then serves the older job first.
    assert dispatch_round() == [older, job.id]


def test_a_submit_waits_when_its_tenant_is_at_its_limit_or_the_pool_is_full(
    tenant_a, tenant_b, settings
):
    settings.POOL_SLOTS = {"gpu": 2}
    limit_set(tenant_a, 1)
    first = _submitted(tenant_a)
    assert first.dispatched_at is not None
    at_limit = _submitted(tenant_a)
    assert at_limit.dispatched_at is None  # tenant A has 1 of 1 in flight
    assert dispatch_round() == []  # nor will a round release it

    run_to_end(first.id)
    assert dispatch_round() == [at_limit.id]
    limit_set(tenant_b, 5)
    other = _submitted(tenant_b)  # tenant B under its limit takes the last slot at once
    assert other.dispatched_at is not None
    full = _submitted(tenant_b)
    assert full.dispatched_at is None  # 2 of 2 slots taken


def test_a_submit_goes_to_the_first_of_its_pools_with_a_free_slot(tenant_a, settings):
    settings.WORKER_POOLS = ["gpu", "gpu-large"]
    settings.POOL_SLOTS = {"gpu": 1, "gpu-large": 1}
    limit_set(tenant_a, 5)
    pools_set(tenant_a, ["gpu-large", "gpu"])
    jobs = [_submitted(tenant_a) for _ in range(3)]
    assert [(job.queue, job.dispatched_at is not None) for job in jobs] == [
        ("gpu", True),
        ("gpu-large", True),
        ("gpu-large", False),  # both full: it waits (its provisional pool is its first)
    ]
