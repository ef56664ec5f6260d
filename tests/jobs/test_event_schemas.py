"""Every JobEvent type has a schema (apps/jobs/events.py), and the payloads the platform really
writes fit it: a spec run and a code run (in the real sandbox) trained by the worker's code, a
cancel while queued and while running, a lost worker (requeued, then failed), a code run that
raises and one killed at its wall clock. Producers and consumers (static/js/run.js included)
read the same definition, so neither can drift from it."""

import re
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs import runner
from apps.jobs.dispatch.reaper import jobs_reap
from apps.jobs.events import EVENT_SCHEMAS, EventPayloadInvalid, event_payload_check
from apps.jobs.lease import job_claim
from apps.jobs.models import Job, JobEvent
from apps.jobs.services import job_cancel, submission_create
from apps.jobs.states import FINAL_STATES
from runtime.progress import FIELDS
from runtime.templates import TEMPLATES
from tests.factories import AssignmentFactory, ExerciseFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
XOR = TEMPLATES["xor"]
LONG_DIGITS = {
    "version": 1,
    "layers": [
        {"type": "linear", "out_features": 32},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 500,
        "batch_size": 64,
        "seed": 0,
    },
}
SLEEPS = "import time\n\ndef build_model(input_shape, num_classes):\n    time.sleep(120)\n"
RAISES = "def build_model(input_shape, num_classes):\n    raise ValueError('no model yet')\n"


def test_every_event_type_the_code_appends_has_a_schema():
    appended = set()
    for path in (ROOT / "apps" / "jobs").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        appended |= set(re.findall(r'\btype="(\w+)"', source))
        appended |= {state.lower() for state in re.findall(r"\btype=JobState\.(\w+)", source)}
    # The final states are appended as `type=state` (lease.claim_finish, transitions).
    assert appended | set(FINAL_STATES) == set(EVENT_SCHEMAS)
    assert set(EVENT_SCHEMAS) == {
        "queued",
        "started",
        "progress",
        "cancel_requested",
        "attempt_lost",
        "requeued",
        "succeeded",
        "failed",
        "cancelled",
        "timed_out",
    }


def test_a_payload_off_its_schema_is_refused_saying_where_and_what():
    with pytest.raises(EventPayloadInvalid) as raised:
        event_payload_check(type="progress", payload={"epoch": 1, "step": 5})
    assert str(raised.value) == (
        "The payload of a 'progress' event is invalid at $: 'epochs' is a required property"
    )
    with pytest.raises(EventPayloadInvalid) as raised:
        event_payload_check(type="started", payload={"attempt": 0, "device": "cpu"})
    assert str(raised.value) == (
        "The payload of a 'started' event is invalid at $.attempt: 0 is less than the minimum of 1"
    )
    with pytest.raises(EventPayloadInvalid, match=r"There is no job event type 'finished'\."):
        event_payload_check(type="finished", payload={})


def test_run_js_reads_only_fields_a_progress_point_has():
    source = (ROOT / "static" / "js" / "run.js").read_text(encoding="utf-8")
    read = set(re.findall(r"\bpoint\.(\w+)", source))
    assert read, "run.js no longer reads progress points as `point.<field>`"
    assert read <= set(FIELDS), read - set(FIELDS)
    # The page's bar, status and curves need these.
    assert {"epoch", "epochs", "fraction_done", "loss", "eta"} <= read


def _exercise(world, **fields):
    fields = {
        "dataset": "xor",
        "min_metric": 0.5,
        "target_metric": 0.95,
        "max_seconds": 120,
        "starter_spec": XOR.spec,
        "allow_code": True,
        "starter_code": XOR.code,
        **fields,
    }
    return ExerciseFactory(course=world.course, **fields)


def _submit(world, exercise, **kind) -> Job:
    assignment = AssignmentFactory(exercise=exercise)
    with scope(tenant=world.tenant.id):
        submission = submission_create(assignment=assignment, learner=world.learner.user, **kind)
    return submission.job


def _run(job: Job) -> str:
    """As the worker's task runs a delivered job: claim it, then run it."""
    with scope(tenant=job.tenant_id):
        claim = job_claim(job_id=job.id, owner="test-worker:1", device="cpu")
        return runner.job_run(claim)


def _events(*jobs: Job) -> list[JobEvent]:
    with scopes_disabled():
        return list(JobEvent.objects.filter(job__in=jobs).order_by("job_id", "seq"))


def _expire(job: Job) -> None:
    with scopes_disabled():
        Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now())


@pytest.mark.timeout(600)
def test_every_event_type_of_real_runs_fits_its_schema(tenant_a, monkeypatch):
    spec_job = _submit(tenant_a, _exercise(tenant_a), kind="spec", spec=XOR.spec)
    assert _run(spec_job) == "succeeded"
    code_job = _submit(tenant_a, _exercise(tenant_a), kind="code", code=XOR.code)
    assert _run(code_job) == "succeeded"
    raising = _submit(tenant_a, _exercise(tenant_a), kind="code", code=RAISES)
    assert _run(raising) == "failed"
    # Killed at its wall clock: a budget of 1 s and a margin of 2 s for a run that sleeps.
    monkeypatch.setattr(runner, "CODE_WALL_MARGIN_S", 2)
    sleeping = _submit(tenant_a, _exercise(tenant_a, max_seconds=1), kind="code", code=SLEEPS)
    assert _run(sleeping) == "timed_out"

    # Cancelled while queued; and while running (the run sees the flag and stops).
    queued = _submit(tenant_a, _exercise(tenant_a), kind="spec", spec=XOR.spec)
    long = _exercise(tenant_a, dataset="digits", target_metric=0.9, starter_spec=LONG_DIGITS)
    running = _submit(tenant_a, long, kind="spec", spec=LONG_DIGITS)
    with scope(tenant=tenant_a.tenant.id):
        job_cancel(job=queued, by=tenant_a.learner.user)
        claim = job_claim(job_id=running.id, owner="test-worker:1", device="cpu")
        job_cancel(job=running, by=tenant_a.learner.user)
        assert runner.job_run(claim) == "cancelled"

    # A lost worker: requeued the first time, failed when it is lost too often.
    lost = _submit(tenant_a, _exercise(tenant_a), kind="spec", spec=XOR.spec)
    with scope(tenant=tenant_a.tenant.id), override_settings(JOB_MAX_WORKERS_LOST=2):
        for _ in range(2):
            assert job_claim(job_id=lost.id, owner="test-worker:1", device="cpu") is not None
            _expire(lost)
            jobs_reap()

    jobs = [spec_job, code_job, raising, sleeping, queued, running, lost]
    events = _events(*jobs)
    for event in events:
        event_payload_check(type=event.type, payload=event.payload)
    assert {event.type for event in events} == set(EVENT_SCHEMAS)
    with scopes_disabled():
        finals = dict(Job.objects.filter(id__in=[j.id for j in jobs]).values_list("id", "state"))
    assert list(finals.values()).count("failed") == 2  # the raising run and the lost worker

    # Both kinds of run report whole points: the counts the run page needs, and one epoch end
    # per epoch with the validation loss.
    for job in (spec_job, code_job):
        points = [e.payload for e in events if e.job_id == job.id and e.type == "progress"]
        ends = [p for p in points if p["epoch_end"]]
        epochs = points[-1]["epochs"]
        assert [p["epoch"] for p in ends] == list(range(1, epochs + 1))
        assert all(p["steps"] == points[-1]["steps"] and p["epochs"] == epochs for p in points)
        assert all(p["val_loss"] is not None for p in ends)
        assert points[-1]["fraction_done"] == 1.0
