"""From submit to grade through the real stack: the API on PostgreSQL, a real Celery worker
process on Redis, the real Channels layer, and the job websocket read until the final event."""

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from apps.jobs.models import Grade, Job, JobEvent
from config.asgi import application
from runtime.templates import TEMPLATES
from tests.conftest import wait_for
from tests.factories import PASSWORD, AssignmentFactory, ExerciseFactory

pytestmark = pytest.mark.django_db(transaction=True)

DIGITS_MLP = {
    "version": 1,
    "layers": [
        {"type": "linear", "out_features": 64},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 8,
        "batch_size": 64,
        "seed": 0,
    },
}


def _logged_in(email: str) -> tuple[APIClient, str]:
    """A learner logs in: an API token from the token endpoint, and a browser session."""
    api = APIClient()
    response = api.post(
        "/api/v1/auth/token/", {"email": email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    browser = Client()
    response = browser.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return api, f"sessionid={browser.cookies['sessionid'].value}"


async def _read_until_final(job_id: str, cookie: str, after: int = 0, timeout: float = 120):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/jobs/{job_id}/?after={after}",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")],
    )
    connected, code = await communicator.connect(timeout=10)
    assert connected, code
    events = []
    try:
        while True:
            event = await communicator.receive_json_from(timeout=timeout)
            events.append(event)
            if event["type"] in ("succeeded", "failed", "cancelled", "timed_out"):
                break
        assert (await communicator.receive_output(timeout=5))["type"] == "websocket.close"
    finally:
        await communicator.disconnect()
    return events


@pytest.mark.parametrize(
    "dataset, spec, target",
    [("xor", TEMPLATES["xor"].spec, 0.95), ("digits", DIGITS_MLP, 0.9)],
    ids=["xor", "digits"],
)
def test_a_submission_trains_on_the_worker_and_streams_to_its_grade(
    celery_worker_process, tenant_a, dataset, spec, target
):
    # A budget far above the run (seconds alone), so a loaded machine does not cut it short.
    exercise = ExerciseFactory(
        course=tenant_a.course,
        dataset=dataset,
        min_metric=0.5,
        target_metric=target,
        starter_spec=spec,
        max_seconds=600,
    )
    assignment = AssignmentFactory(exercise=exercise)
    api, cookie = _logged_in(tenant_a.learner.user.email)

    response = api.post(
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "spec", "spec": spec},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["attempt"], body["kind"], body["job"]["state"]) == (1, "spec", "queued")
    job_id = body["job"]["id"]

    events = async_to_sync(_read_until_final)(job_id, cookie)

    seqs = [event["seq"] for event in events]
    assert seqs == list(range(1, len(events) + 1))  # from 1, no gap, no duplicate
    types = [event["type"] for event in events]
    assert types[:2] == ["queued", "started"]
    assert types[-1] == "succeeded"
    assert set(types[2:-1]) == {"progress"}
    epoch_ends = [
        e["payload"]
        for e in events
        if e["type"] == "progress" and e["payload"]["val_accuracy"] is not None
    ]
    epochs = spec["training"]["epochs"]
    assert [p["epoch"] for p in epoch_ends] == list(range(1, epochs + 1))
    final = events[-1]["payload"]
    accuracy = final["metrics"]["accuracy"]
    assert accuracy >= target
    assert final["grade"]["score"] == "100.00"
    assert final["grade"]["max_score"] == "100.00"

    with scopes_disabled():
        job = Job.objects.get(id=job_id)
        assert (job.state, job.attempt, job.last_seq) == ("succeeded", 1, len(events))
        assert JobEvent.objects.filter(job=job).count() == len(events)
        grade = Grade.objects.get(submission__job=job)
        assert (grade.score, grade.source, grade.metrics["accuracy"]) == (
            Decimal("100.00"),
            "automatic",
            accuracy,
        )
        assert list(grade.revisions.values_list("score", "source")) == [
            (Decimal("100.00"), "automatic")
        ]

    detail = api.get(f"/api/v1/t/{tenant_a.tenant.slug}/submissions/{body['id']}/").json()
    assert detail["job"]["state"] == "succeeded"
    assert detail["grade"]["score"] == "100.00"
    assert detail["grade"]["metrics"]["accuracy"] == accuracy
    assert detail["grade"]["feedback"].endswith("Score: 100.00 / 100.00.")


def test_a_running_job_cancelled_through_the_api_ends_cancelled_without_a_grade(
    celery_worker_process, tenant_a
):
    long_run = {**DIGITS_MLP, "training": {**DIGITS_MLP["training"], "epochs": 500}}
    exercise = ExerciseFactory(
        course=tenant_a.course,
        dataset="digits",
        min_metric=0.5,
        target_metric=0.9,
        starter_spec=long_run,
    )
    assignment = AssignmentFactory(exercise=exercise)
    api, cookie = _logged_in(tenant_a.learner.user.email)
    base = f"/api/v1/t/{tenant_a.tenant.slug}"
    response = api.post(
        f"{base}/assignments/{assignment.id}/submissions/",
        {"kind": "spec", "spec": long_run},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]

    def training() -> bool:
        events = api.get(f"{base}/jobs/{job_id}/events/").json()
        return any(event["type"] == "progress" for event in events)

    wait_for(training, timeout=120, message="the job's first progress event")
    response = api.post(f"{base}/jobs/{job_id}/cancel/")
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["cancel_requested"]) == ("running", True)

    events = async_to_sync(_read_until_final)(job_id, cookie)

    types = [event["type"] for event in events]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert types[:2] == ["queued", "started"]
    assert types[-1] == "cancelled"
    assert types.count("cancel_requested") == 1
    assert set(types[2:-1]) == {"progress", "cancel_requested"}
    with scopes_disabled():
        job = Job.objects.get(id=job_id)
        assert (job.state, job.outcome["status"]) == ("cancelled", "cancelled")
        assert job.outcome["epochs_completed"] < 500
        assert not Grade.objects.filter(submission__job=job).exists()


def test_a_code_submission_trains_in_the_sandbox_on_the_worker_and_is_graded(
    celery_worker_process, tenant_a
):
    template = TEMPLATES["xor"]
    exercise = ExerciseFactory(
        course=tenant_a.course,
        dataset="xor",
        allow_code=True,
        min_metric=0.5,
        target_metric=0.95,
        max_seconds=90,
        starter_spec=template.spec,
        starter_code=template.code,
    )
    assignment = AssignmentFactory(exercise=exercise)
    api, cookie = _logged_in(tenant_a.learner.user.email)
    response = api.post(
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "code", "code": template.code},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]

    events = async_to_sync(_read_until_final)(job_id, cookie)

    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "succeeded", events[-1]
    assert {event["type"] for event in events[2:-1]} == {"progress"}
    final = events[-1]["payload"]
    assert final["metrics"]["accuracy"] == 1.0
    assert final["metrics"]["device"] == "cpu"
    assert final["grade"]["score"] == "100.00"
