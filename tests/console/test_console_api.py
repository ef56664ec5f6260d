"""The platform console API: workers with their heartbeat and current job, queue depth per
tenant and per pool, and cancelling any tenant's job. Tenant roles are refused and nothing
changes."""

import pytest
from django_scopes import scopes_disabled

from tests.conftest import api_client_for
from tests.console.support import job_in
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

PLATFORM_ONLY = {
    "error": {
        "code": "permission_denied",
        "message": "This needs a platform administrator.",
        "fields": {},
    }
}


def test_workers_with_heartbeat_age_liveness_and_current_job(platform_admin, tenant_a, beats):
    beats("celery@gpu-1", age=3.24, pid=101, queues=["gpu"], device="NVIDIA H100 80GB HBM3")
    beats("celery@gpu-10", age=61, pid=202, queues=["gpu", "gpu-big"])
    job = job_in(tenant_a, state="running", owner="celery@gpu-1:101")
    job_in(tenant_a, state="queued", attempt=3)
    response = api_client_for(platform_admin).get("/api/v1/platform/workers/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "celery@gpu-1",
            "queues": ["gpu"],
            "pid": 101,
            "device": "NVIDIA H100 80GB HBM3",
            "heartbeat_age": 3.2,
            "alive": True,
            "current_job": {
                "id": str(job.id),
                "tenant": "alpha",
                "state": "running",
                "queue": "gpu",
                "device": "cpu",
                "attempt": 1,
                "started_at": job.started_at.isoformat().replace("+00:00", "Z"),
            },
        },
        {
            "name": "celery@gpu-10",
            "queues": ["gpu", "gpu-big"],
            "pid": 202,
            "device": "cpu",
            "heartbeat_age": 61.0,
            "alive": False,
            "current_job": None,
        },
    ]


def test_no_heartbeats_is_an_empty_list(platform_admin, beats):
    response = api_client_for(platform_admin).get("/api/v1/platform/workers/")
    assert (response.status_code, response.json()) == (200, [])


def test_queue_depth_per_tenant_and_per_pool(platform_admin, tenant_a, tenant_b, settings):
    settings.POOL_SLOTS = {"gpu": 4}
    job_in(tenant_a, state="queued", attempt=2)  # waiting for the dispatcher: in no pool yet
    # Released to a pool that is no longer configured (WORKER_POOLS is ["gpu"]).
    job_in(tenant_a, state="queued", attempt=3, queue="gpu-big", released=True)
    job_in(tenant_a, state="running", attempt=4, owner="celery@gpu-1:1")
    job_in(tenant_b, state="queued", attempt=2, released=True)
    job_in(tenant_b, state="cancelled", attempt=3)  # ended jobs and the worlds' graded ones: none
    response = api_client_for(platform_admin).get("/api/v1/platform/queues/")
    assert response.status_code == 200
    assert response.json() == {
        "tenants": [
            {"tenant": "alpha", "name": "School ALPHA", "queued": 2, "running": 1},
            {"tenant": "beta", "name": "School BETA", "queued": 1, "running": 0},
        ],
        "pools": [
            {"pool": "gpu", "slots": 4, "running": 1, "released": 1},
            {"pool": "gpu-big", "slots": 0, "running": 0, "released": 1},
        ],
    }


def test_a_platform_admin_cancels_a_running_job_of_any_tenant(platform_admin, tenant_b):
    job = job_in(tenant_b, state="running", owner="celery@gpu-1:1")
    response = api_client_for(platform_admin).post(f"/api/v1/platform/jobs/{job.id}/cancel/")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["state"], body["cancel_requested"]) == (str(job.id), "running", True)
    with scopes_disabled():
        job.refresh_from_db()
    assert (job.state, job.cancel_requested_by) == ("running", platform_admin)


def test_cancelling_an_unknown_job_is_404(platform_admin, tenant_a):
    client = api_client_for(platform_admin)
    before = db_snapshot()
    response = client.post("/api/v1/platform/jobs/00000000-0000-0000-0000-000000000000/cancel/")
    assert (response.status_code, response.json()) == (
        404,
        {"error": {"code": "not_found", "message": "Not found.", "fields": {}}},
    )
    assert db_snapshot() == before


def test_cancelling_an_ended_job_is_409(platform_admin, tenant_a):
    client = api_client_for(platform_admin)
    before = db_snapshot()
    response = client.post(f"/api/v1/platform/jobs/{tenant_a.job.id}/cancel/")
    assert (response.status_code, response.json()) == (
        409,
        {
            "error": {
                "code": "conflict",
                "message": "This job has already ended (succeeded).",
                "fields": {},
            }
        },
    )
    assert db_snapshot() == before


@pytest.mark.parametrize("role", ["admin", "teacher", "learner"])
def test_tenant_roles_are_refused_the_console_and_nothing_changes(tenant_a, role):
    job = job_in(tenant_a, state="running", owner="celery@gpu-1:1")
    client = api_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    for method, url in [
        ("get", "/api/v1/platform/workers/"),
        ("get", "/api/v1/platform/queues/"),
        ("post", f"/api/v1/platform/jobs/{job.id}/cancel/"),
    ]:
        response = getattr(client, method)(url)
        assert (response.status_code, response.json()) == (403, PLATFORM_ONLY), url
    assert db_snapshot() == before


def test_anonymous_callers_are_refused(tenant_a):
    response = api_client_for(None).get("/api/v1/platform/workers/")
    assert response.status_code == 401
