"""What a hostile learner's code submission costs and leaves behind, through the real stack: the
API on PostgreSQL, a real Celery worker process, the real bubblewrap sandbox and the ledger.

The quota charges what the worker measured around the sandbox, whatever the code reported; the
progress it forges is throttled and counted; what it writes on the result pipe that the harness
never would fails the run as the learner's (charged, not refunded), and nothing large is kept.
"""

import json
from decimal import Decimal

import pytest
from django.db import connection
from django_scopes import scopes_disabled

from apps.jobs.models import Job, JobEvent
from apps.jobs.states import FINAL_STATES
from apps.quotas.models import LedgerEntry
from runtime.datasets import dataset_info
from runtime.sandbox import bubblewrap_available, format_bytes, protocol, supervise
from runtime.templates import TEMPLATES
from runtime.trainer import PROGRESS_INTERVAL_S
from tests.conftest import api_client_for, wait_for
from tests.factories import AssignmentFactory, ExerciseFactory
from tests.runtime.sandbox_support import (
    PROGRESS_FLOOD,
    forged_result,
    outcome_of_20_mb,
    protocol_message,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not bubblewrap_available(), reason="bubblewrap is missing"),
]

XOR_TEST_INPUTS = dataset_info("xor").sizes[2]
SLEEPER = "import time\n\n\ndef build_model(input_shape, num_classes):\n    time.sleep(__S__)\n"


def submit_code(world, code: str, *, max_seconds: int = 60) -> str:
    xor = TEMPLATES["xor"]
    exercise = ExerciseFactory(
        course=world.course,
        dataset="xor",
        allow_code=True,
        min_metric=0.5,
        target_metric=0.95,
        max_seconds=max_seconds,
        starter_spec=xor.spec,
        starter_code=xor.code,
    )
    assignment = AssignmentFactory(exercise=exercise)
    api = api_client_for(world.learner.user)
    response = api.post(
        f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "code", "code": code},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["job"]["id"]


def finished(job_id: str, *, timeout: float = 180) -> Job:
    def final():
        with scopes_disabled():
            job = Job.objects.get(id=job_id)
        return job if job.state in FINAL_STATES else None

    job = wait_for(final, timeout=timeout, message=f"job {job_id} to end")
    # The worker's work after the end (publishing, a dispatch round) is done before the test
    # ends, so that the test's flush never meets a transaction of the worker's.
    wait_for(worker_quiet, timeout=30, message="the worker's last transaction to end")
    return job


def worker_quiet() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state <> 'idle'"
        )
        return cursor.fetchone()[0] == 0


def settlement(job: Job) -> tuple[Decimal, Decimal, str]:
    with scopes_disabled():
        row = LedgerEntry.objects.get(job=job, kind="settle")
    return row.reserved, row.used, row.note


def held_seconds(job: Job) -> Decimal:
    """The time the run held the job, from its claim to its end (the database's clock)."""
    return Decimal((job.finished_at - job.run_started_at).total_seconds())


def test_a_submission_that_only_sleeps_is_charged_the_time_its_worker_measured(
    celery_worker_process, tenant_a
):
    job = finished(submit_code(tenant_a, SLEEPER.replace("__S__", "4")))
    # It reported nothing: no outcome, no steps; it was charged all the same.
    assert (job.state, job.failure_kind, job.outcome) == ("failed", "invalid_model", None)
    assert Decimal(4) < job.device_seconds < held_seconds(job)
    assert settlement(job) == (
        Decimal(-60),
        job.device_seconds,
        "device time of the sandbox, measured by its worker",
    )


def test_a_submission_that_sleeps_past_its_time_is_charged_its_whole_budget(
    celery_worker_process, tenant_a
):
    job = finished(submit_code(tenant_a, SLEEPER.replace("__S__", "3600"), max_seconds=1))
    assert (job.state, job.failure_kind, job.outcome) == ("timed_out", "wall_time", None)
    # Killed at its wall clock (its 1 s budget and the margin to start and report): the
    # measured time is past the budget, which is what it is charged.
    assert job.device_seconds >= 1 + 30
    assert settlement(job)[:2] == (Decimal(-1), Decimal("1.000"))


def test_forged_progress_is_throttled_and_what_was_dropped_is_recorded(
    celery_worker_process, tenant_a
):
    job = finished(submit_code(tenant_a, PROGRESS_FLOOD))
    assert (job.state, job.failure_kind) == ("failed", "exception")
    with scopes_disabled():
        events = JobEvent.objects.filter(job=job, type="progress").count()
    bound = supervise.PROGRESS_BURST + float(job.device_seconds) / PROGRESS_INTERVAL_S
    assert 1 <= events <= bound
    assert job.progress_dropped == 200_000 - events
    assert settlement(job)[1] == job.device_seconds


def test_an_outcome_nested_990_deep_fails_as_the_learners_and_is_charged(
    celery_worker_process, tenant_a
):
    deep = "b'{\"a\":' * 990 + b'1' + b'}' * 990"
    job = finished(submit_code(tenant_a, forged_result(deep, XOR_TEST_INPUTS)))
    assert (job.state, job.failure_kind) == ("failed", "protocol")
    assert job.message == protocol_message("line 2 is nested too deeply")
    assert settlement(job)[1] == job.device_seconds > 0  # the learner's doing: not refunded


def test_a_20_mb_outcome_fails_and_nothing_large_is_kept(celery_worker_process, tenant_a):
    # With one prediction per test input: a result that would pass but for its outcome's size.
    job = finished(submit_code(tenant_a, outcome_of_20_mb(XOR_TEST_INPUTS)))
    assert (job.state, job.failure_kind, job.outcome) == ("failed", "protocol", None)
    longest = protocol.result_line_limit(XOR_TEST_INPUTS, 2)
    assert format_bytes(longest) == "22.4 KiB"  # the outcome's 16 KiB, an export error's 6 KiB
    assert job.message == protocol_message("line 2 is longer than 22.4 KiB, the most it may be")
    with scopes_disabled():
        payloads = list(JobEvent.objects.filter(job=job).values_list("type", "payload"))
    assert [kind for kind, _ in payloads] == ["queued", "started", "failed"]
    assert sum(len(json.dumps(payload)) for _, payload in payloads) < 4096
    assert settlement(job)[1] == job.device_seconds
