"""Jobs survive faults of the real stack: a worker killed mid-training, a task delivered twice,
a stale delivery, the broker down at submit time, a broker restart that loses a message.

Each test starts its own Redis server, Celery workers and beat (real processes, the project's
own settings) and waits on conditions with deadlines; failures show the processes' log tails.
"""

import copy
import logging
import os
import signal
import time

import pytest
import redis
from django_scopes import scope, scopes_disabled

from apps.jobs.lease import job_claim
from apps.jobs.models import Grade, GradeRevision, Job, JobEvent
from apps.jobs.runner import LeaseWatch
from apps.jobs.services import job_cancel
from apps.jobs.states import FINAL_STATES
from apps.jobs.tasks import run_job
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, wait_for
from tests.factories import AssignmentFactory, ExerciseFactory, JobFactory, SubmissionFactory
from tests.jobs.faults_support import (
    CeleryStack,
    RedisServer,
    deadline_from,
    task_results,
    this_process_on_redis,
)
from tests.jobs.test_end_to_end import DIGITS_MLP
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

# For the workers and beat of these tests: a lost worker is seen within seconds.
FAST_REAPER = {"JOB_LEASE_SECONDS": 3, "JOB_REAPER_INTERVAL_SECONDS": 1}


def with_epochs(spec: dict, epochs: int) -> dict:
    """A known-good spec, trained for `epochs`: these tests are about delivery, not learning."""
    spec = copy.deepcopy(spec)
    spec["training"]["epochs"] = epochs
    return spec


XOR_SHORT = with_epochs(TEMPLATES["xor"].spec, 5)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack(tmp_path, redis_server):
    """Workers and beat on the private Redis; this process publishes there too."""
    stack = CeleryStack(tmp_path, redis_server.url)
    with this_process_on_redis(redis_server.url):
        try:
            yield stack
        finally:
            stack.stop()


def digits_assignment(world, *, epochs: int):
    spec = with_epochs(DIGITS_MLP, epochs)
    exercise = ExerciseFactory(
        course=world.course, dataset="digits", min_metric=0.5, target_metric=0.9, starter_spec=spec
    )
    return AssignmentFactory(exercise=exercise), spec


def submit(world, assignment, spec) -> dict:
    """The learner submits through the real API (the submission service dispatches)."""
    response = api_client_for(world.learner.user).post(
        f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "spec", "spec": spec},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["job"]["state"] == "queued"
    return body


def job_get(job_id) -> Job:
    with scopes_disabled():
        return Job.objects.get(id=job_id)


def events_of(job_id) -> list[JobEvent]:
    with scopes_disabled():
        return list(JobEvent.objects.filter(job_id=job_id).order_by("seq"))


def grades_of(submission_id) -> tuple[int, int]:
    with scopes_disabled():
        return (
            Grade.objects.filter(submission_id=submission_id).count(),
            GradeRevision.objects.filter(grade__submission_id=submission_id).count(),
        )


def wait_until_final(stack, job_id, *, timeout: float) -> Job:
    wait_for(
        lambda: job_get(job_id).state in FINAL_STATES,
        timeout=timeout,
        interval=0.2,
        message=lambda: f"job {job_id} final (now {job_get(job_id).state})\n{stack.tails()}",
    )
    return job_get(job_id)


def epoch_ends(events) -> list[int]:
    return [
        e.payload["epoch"]
        for e in events
        if e.type == "progress" and e.payload["val_accuracy"] is not None
    ]


def test_a_job_whose_worker_is_killed_runs_again_on_another_and_succeeds_once(stack, tenant_a):
    epochs = 8  # seconds of training: the kill, right after the first progress, lands mid-run
    assignment, spec = digits_assignment(tenant_a, epochs=epochs)
    stack.beat(**FAST_REAPER)
    first = stack.worker("first", **FAST_REAPER)
    body = submit(tenant_a, assignment, spec)
    job_id = body["job"]["id"]

    def attempt_1_progressing() -> bool:
        return any(e.type == "progress" and e.attempt == 1 for e in events_of(job_id))

    wait_for(
        attempt_1_progressing,
        timeout=120,
        interval=0.05,
        message=lambda: f"a progress event of attempt 1\n{stack.tails()}",
    )
    os.kill(first.pid, signal.SIGKILL)  # the solo pool trains in this very process
    assert first.process.wait(timeout=30) == -signal.SIGKILL
    # The reaper runs on the next worker (the solo pool runs its tasks one at a time).
    second = stack.worker("second", **FAST_REAPER)

    job = wait_until_final(stack, job_id, timeout=180)
    assert (job.state, job.attempt, job.workers_lost) == ("succeeded", 2, 1), stack.tails()
    events = events_of(job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert job.last_seq == len(events)
    types = [e.type for e in events]
    lost = types.index("attempt_lost")
    assert types[:2] == ["queued", "started"]
    assert set(types[2:lost]) == {"progress"}  # the killed attempt's progress is kept
    assert types[lost : lost + 3] == ["attempt_lost", "requeued", "started"]
    assert set(types[lost + 3 : -1]) == {"progress"}
    assert types[-1] == "succeeded"
    assert types.count("succeeded") == 1
    # Each event is marked with the attempt that wrote it; the reaper's two belong to attempt 1.
    assert [e.attempt for e in events] == [0] + [1] * (lost + 1) + [2] * (len(events) - lost - 2)
    assert events[1].payload == {"attempt": 1, "device": "cpu"}
    assert events[lost].payload["attempt"] == 1
    assert events[lost].payload["worker"] == f"{first.hostname}:{first.pid}"
    assert events[lost + 1].payload == {"after_attempt": 1}
    assert events[lost + 2].payload == {"attempt": 2, "device": "cpu"}
    assert epoch_ends(events[lost + 2 :]) == list(range(1, epochs + 1))
    assert events[-1].payload["grade"]["score"] == "100.00"
    assert grades_of(body["id"]) == (1, 1)
    assert task_results(first) == {}  # killed before returning
    assert list(task_results(second).values()).count("succeeded") == 1, second.tail()


def test_the_lease_watch_renews_the_lease_and_sees_a_cancel(tenant_a, settings):
    """The watch runs in its own thread, outside the task's tenant scope: it must still renew
    (or every job longer than a lease is reaped mid-run) and see the cancel flag."""
    settings.JOB_LEASE_SECONDS = 0.9  # renewed every 0.3 s
    submission = SubmissionFactory(
        assignment=tenant_a.assignment, learner=tenant_a.learner.user, attempt=2
    )
    job = JobFactory(submission=submission)
    with scope(tenant=tenant_a.tenant.id):
        claim = job_claim(job_id=job.id, owner="test:1", device="cpu")
    claimed_until = job_get(job.id).lease_expires_at
    watch = LeaseWatch(claim, deadline=60)
    watch.start()
    try:
        wait_for(
            lambda: job_get(job.id).lease_expires_at > claimed_until,
            timeout=30,
            message="the lease renewed by the watch",
        )
        with scope(tenant=tenant_a.tenant.id):
            job_cancel(job=job_get(job.id), by=tenant_a.learner.user)
        wait_for(watch.cancelled.is_set, timeout=30, message="the watch seeing the cancel")
        assert not watch.lost.is_set()
    finally:
        watch.stop()


@pytest.fixture(scope="class")
def pair(django_db_setup, tmp_path_factory):
    """Two workers (two real consumers) on one private Redis, started once for a class."""
    workdir = tmp_path_factory.mktemp("pair")
    server = RedisServer(workdir)
    server.start()
    stack = CeleryStack(workdir, server.url)
    try:
        with this_process_on_redis(server.url):
            left = stack.worker("left", ready=False)
            right = stack.worker("right", ready=False)
            stack.wait_ready(left)
            stack.wait_ready(right)
            yield stack, server, left, right
    finally:
        stack.stop()
        server.stop()


class TestDuplicateDeliveries:
    """More deliveries of a job's task than runs: the lease lets exactly one run."""

    def test_the_same_task_delivered_twice_at_once_runs_the_job_once(self, pair, tenant_a):
        stack, _, left, right = pair
        assignment, spec = digits_assignment(tenant_a, epochs=6)
        body = submit(tenant_a, assignment, spec)  # the first delivery, published on commit
        job_id = body["job"]["id"]
        run_job.apply_async(args=[str(tenant_a.tenant.id), job_id])  # the duplicate

        job = wait_until_final(stack, job_id, timeout=120)
        wait_for(
            lambda: len(task_results(left)) + len(task_results(right)) == 2,
            timeout=60,
            message=lambda: f"both deliveries processed\n{stack.tails()}",
        )
        assert (job.state, job.attempt, job.workers_lost) == ("succeeded", 1, 0), stack.tails()
        types = [e.type for e in events_of(job_id)]
        assert types.count("started") == 1
        assert (types[:2], types[-1], set(types[2:-1])) == (
            ["queued", "started"],
            "succeeded",
            {"progress"},
        )
        assert grades_of(body["id"]) == (1, 1)
        # Two real consumers took one delivery each; the one that found the lease skipped.
        results = [list(task_results(left).values()), list(task_results(right).values())]
        assert sorted(results) == [["skipped"], ["succeeded"]], stack.tails()
        skipper = left if results[0] == ["skipped"] else right
        assert f"job {job_id} is leased to " in skipper.log(), skipper.tail()

    def test_a_stale_delivery_after_success_changes_nothing(self, pair, tenant_a):
        stack, server, left, right = pair
        job = tenant_a.job  # succeeded and graded
        before = db_snapshot()

        result = run_job.apply_async(args=[str(tenant_a.tenant.id), str(job.id)])

        queue = redis.Redis.from_url(server.url)
        wait_for(
            lambda: (
                queue.llen("gpu") == 0
                and result.id in {**task_results(left), **task_results(right)}
            ),
            timeout=60,
            message=lambda: f"delivery {result.id} processed\n{stack.tails()}",
        )
        assert {**task_results(left), **task_results(right)}[result.id] == "skipped"
        assert f"job {job.id} is already succeeded; delivery ignored" in left.log() + right.log()
        assert db_snapshot() == before


def test_a_submission_made_while_the_broker_is_down_runs_when_it_is_back(
    stack, redis_server, tenant_a, caplog
):
    stack.beat(**FAST_REAPER)
    stack.worker("worker", **FAST_REAPER)
    redis_server.stop()

    with caplog.at_level(logging.WARNING):
        body = submit(tenant_a, tenant_a.assignment, XOR_SHORT)
    job_id = body["job"]["id"]
    job = job_get(job_id)
    assert (job.state, job.dispatched_at, job.last_seq) == ("queued", None, 1)
    warnings = [record.getMessage() for record in caplog.records]
    # Neither the task's publish nor the "queued" event's publish failed the request.
    assert f"could not publish job {job_id}; the reaper will retry" in warnings
    group = f"tenant.{tenant_a.tenant.id.hex}.job.{job.id.hex}"  # apps.core.realtime's word
    assert f"could not publish job.event to {group}" in warnings

    restarted = time.monotonic()
    redis_server.start()
    job = wait_until_final(stack, job_id, timeout=deadline_from(restarted, 60))
    assert (job.state, job.attempt, job.workers_lost) == ("succeeded", 1, 0), stack.tails()
    assert job.dispatched_at is not None
    assert [e.type for e in events_of(job_id)][-1] == "succeeded"
    assert grades_of(body["id"]) == (1, 1)


def test_a_message_lost_in_a_broker_restart_is_published_again(stack, redis_server, tenant_a):
    """Redis without persistence forgets the queued message; after JOB_REDISPATCH_AFTER_SECONDS
    (600 s by default, 2 s here) the reaper publishes the still-queued job again."""
    body = submit(tenant_a, tenant_a.assignment, XOR_SHORT)  # no worker yet
    job_id = body["job"]["id"]
    first_dispatch = job_get(job_id).dispatched_at
    assert first_dispatch is not None
    assert redis.Redis.from_url(redis_server.url).llen("gpu") == 1

    redis_server.stop()
    redis_server.start()
    assert redis.Redis.from_url(redis_server.url).llen("gpu") == 0  # the message is gone

    settings = {**FAST_REAPER, "JOB_REDISPATCH_AFTER_SECONDS": 2}
    stack.beat(**settings)
    stack.worker("worker", **settings)
    job = wait_until_final(stack, job_id, timeout=120)
    assert (job.state, job.attempt, job.workers_lost) == ("succeeded", 1, 0), stack.tails()
    assert job.dispatched_at > first_dispatch
    assert [e.type for e in events_of(job_id)].count("started") == 1
    assert grades_of(body["id"]) == (1, 1)
