"""Quota APIs: platform administrators read and set a tenant's quota (validated by field);
tenant administrators see the quota, its balance and this period's usage by course, by learner
and per day. Everyone else is refused, and a refusal changes nothing."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.quotas.models import TenantQuota
from apps.quotas.services import period_start_for
from tests.conftest import api_client_for
from tests.factories import (
    AssignmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ExerciseFactory,
    TenantFactory,
)
from tests.quotas.ledger_support import enrolled_learner, next_month_start, run, submit
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _platform_url(slug) -> str:
    return f"/api/v1/platform/tenants/{slug}/quota/"


def _quota(world) -> TenantQuota:
    with scopes_disabled():
        return TenantQuota.objects.get(tenant=world.tenant)


def _month_start():
    return period_start_for(timezone.now(), "month")


def _fixture_quota_body(slug="alpha") -> dict:
    return {
        "tenant": slug,
        "period": "month",
        "gpu_seconds": 3600,
        "max_running_jobs": 2,
        "max_queued_jobs": 100,
        "max_seconds_per_job": 600,
        "learner_gpu_seconds_per_day": None,
        "pools": ["gpu"],
        "storage_bytes": 5 * 2**30,
        "predictions_per_day": 10_000,
        "period_started_at": _iso(_month_start()),
        "artifacts": {
            "storage_used": 0,
            "storage_limit": 5 * 2**30,
            "predictions_requests": 0,
            "predictions_samples": 0,
            "predictions_limit": 10_000,
        },
        "balance": {
            "quota": 3600,
            "reserved": 0.0,
            "used": 2.5,  # the fixture's graded job
            "remaining": 3597.5,
            "period_started_at": _iso(_month_start()),
            "resets_at": _iso(next_month_start(timezone.now())),
        },
    }


# --- Platform administrators ------------------------------------------------------------------


def test_a_platform_admin_reads_a_tenants_quota_and_balance(tenant_a, platform_admin):
    response = api_client_for(platform_admin).get(_platform_url("alpha"))
    assert response.status_code == 200
    assert response.json() == _fixture_quota_body()


def test_a_tenant_without_a_quota_shows_the_defaults_and_reading_writes_nothing(platform_admin):
    TenantFactory(slug="gamma")
    client = api_client_for(platform_admin)
    before = db_snapshot()
    body = client.get(_platform_url("gamma")).json()
    assert db_snapshot() == before
    defaults = settings.DEFAULT_TENANT_QUOTA
    assert {name: body[name] for name in defaults} == defaults
    assert body["pools"] == ["gpu"]
    assert body["balance"]["remaining"] == defaults["gpu_seconds"]


def test_a_platform_admin_puts_a_whole_quota(tenant_a, platform_admin, settings):
    settings.WORKER_POOLS = ["gpu", "gpu-large"]
    body = {
        "period": "week",
        "gpu_seconds": 7200,
        "max_running_jobs": 3,
        "max_queued_jobs": 50,
        "max_seconds_per_job": 300,
        "learner_gpu_seconds_per_day": 600,
        "pools": ["gpu", "gpu-large"],
    }
    response = api_client_for(platform_admin).put(_platform_url("alpha"), body, format="json")
    assert response.status_code == 200
    week_start = period_start_for(timezone.now(), "week")
    assert {name: response.json()[name] for name in body} == body
    # A new kind of period starts its current period; the balance counts from there.
    assert response.json()["period_started_at"] == _iso(week_start)
    quota = _quota(tenant_a)
    assert (quota.period, quota.gpu_seconds, quota.max_running_jobs, quota.max_queued_jobs) == (
        "week",
        7200,
        3,
        50,
    )
    assert (quota.max_seconds_per_job, quota.learner_gpu_seconds_per_day, quota.pools) == (
        300,
        600,
        ["gpu", "gpu-large"],
    )
    assert quota.period_started_at == week_start

    # A PUT without the optional daily allowance removes it.
    del body["learner_gpu_seconds_per_day"]
    response = api_client_for(platform_admin).put(_platform_url("alpha"), body, format="json")
    assert response.status_code == 200
    assert _quota(tenant_a).learner_gpu_seconds_per_day is None


def test_a_platform_admin_patches_one_field_and_the_rest_stays(tenant_a, platform_admin):
    response = api_client_for(platform_admin).patch(
        _platform_url("alpha"), {"gpu_seconds": 10}, format="json"
    )
    assert response.status_code == 200
    expected = _fixture_quota_body()
    expected["gpu_seconds"] = 10
    expected["balance"].update(quota=10, remaining=7.5)
    assert response.json() == expected
    assert _quota(tenant_a).gpu_seconds == 10


def test_setting_the_quota_of_a_tenant_without_one_creates_it(platform_admin):
    tenant = TenantFactory(slug="gamma")
    response = api_client_for(platform_admin).patch(
        _platform_url("gamma"), {"max_running_jobs": 5}, format="json"
    )
    assert response.status_code == 200
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=tenant)
    assert (quota.max_running_jobs, quota.gpu_seconds) == (
        5,
        settings.DEFAULT_TENANT_QUOTA["gpu_seconds"],
    )


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"gpu_seconds": 0}, {"gpu_seconds": ["Ensure this value is greater than or equal to 1."]}),
        (
            {"max_seconds_per_job": -5},
            {"max_seconds_per_job": ["Ensure this value is greater than or equal to 1."]},
        ),
        (
            {"learner_gpu_seconds_per_day": 0},
            {"learner_gpu_seconds_per_day": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"period": "year"}, {"period": ['"year" is not a valid choice.']}),
        (
            {"pools": ["gpu", "cpu-farm"]},
            {"pools": ["Unknown pool(s): cpu-farm. Known pools: gpu."]},
        ),
        ({"pools": []}, {"pools": ["This list may not be empty."]}),
        ({"pools": ["gpu", "gpu"]}, {"pools": ["A pool is named more than once."]}),
    ],
)
def test_a_bad_quota_is_a_400_naming_the_field_and_changes_nothing(
    tenant_a, platform_admin, payload, fields
):
    client = api_client_for(platform_admin)
    before = db_snapshot()
    response = client.patch(_platform_url("alpha"), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert db_snapshot() == before


def test_an_unknown_tenant_is_404(platform_admin):
    response = api_client_for(platform_admin).get(_platform_url("nowhere"))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("role", ["admin", "teacher", "learner"])
@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_tenant_members_cannot_use_the_platform_quota_api(tenant_a, role, method):
    client = api_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    response = getattr(client, method)(_platform_url("alpha"), {"gpu_seconds": 1}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This needs a platform administrator."
    assert db_snapshot() == before


# --- Tenant administrators ---------------------------------------------------------------------


def test_a_tenant_admin_sees_the_quota_and_its_balance(tenant_a):
    response = api_client_for(tenant_a.admin.user).get("/api/v1/t/alpha/quota/")
    assert response.status_code == 200
    assert response.json() == _fixture_quota_body()


@pytest.mark.parametrize("path", ["quota", "usage"])
@pytest.mark.parametrize("role", ["teacher", "learner"])
def test_teachers_and_learners_cannot_see_the_quota_or_usage(tenant_a, role, path):
    client = api_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    response = client.get(f"/api/v1/t/alpha/{path}/")
    assert response.status_code == 403
    assert (
        response.json()["error"]["message"] == "This needs the administrator role in this tenant."
    )
    assert db_snapshot() == before


@pytest.mark.parametrize("path", ["quota", "usage"])
def test_another_tenants_admin_gets_404(tenant_a, tenant_b, path):
    client = api_client_for(tenant_b.admin.user)
    before = db_snapshot()
    response = client.get(f"/api/v1/t/alpha/{path}/")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert db_snapshot() == before


def _long_assignment(course):
    return AssignmentFactory(exercise=ExerciseFactory(course=course, max_seconds=600))


def test_usage_this_period_by_course_by_learner_and_per_day(tenant_a):
    vision = CourseFactory(tenant=tenant_a.tenant, title="Vision at alpha")
    nn_work, vision_work = _long_assignment(tenant_a.course), _long_assignment(vision)
    ada, bob = enrolled_learner(tenant_a), enrolled_learner(tenant_a)
    EnrollmentFactory(course=vision, user=ada)
    first_day = _month_start() + timedelta(hours=1)
    now = timezone.now()
    run(submit(tenant_a, ada, nn_work).job, started=first_day, seconds=100)
    run(submit(tenant_a, ada, vision_work).job, started=now - timedelta(seconds=30), seconds=30)
    run(submit(tenant_a, bob, nn_work).job, started=now - timedelta(seconds=60), seconds=20.5)
    submit(tenant_a, bob, nn_work)  # queued: 600 reserved
    fixture_learner = tenant_a.learner.user

    response = api_client_for(tenant_a.admin.user).get("/api/v1/t/alpha/usage/")
    assert response.status_code == 200
    body = response.json()
    assert body["period_started_at"] == _iso(_month_start())
    assert body["resets_at"] == _iso(next_month_start(now))
    assert body["used"] == 153.0
    nn = tenant_a.course
    assert body["by_course"] == [
        {
            "course_id": str(nn.id),
            "course_title": nn.title,
            "used": 123.0,
            "reserved": 600.0,
            "jobs": 4,
        },
        {
            "course_id": str(vision.id),
            "course_title": "Vision at alpha",
            "used": 30.0,
            "reserved": 0.0,
            "jobs": 1,
        },
    ]
    assert body["by_learner"] == [
        {
            "learner_id": str(ada.id),
            "email": ada.email,
            "full_name": ada.full_name,
            "used": 130.0,
            "reserved": 0.0,
            "jobs": 2,
        },
        {
            "learner_id": str(bob.id),
            "email": bob.email,
            "full_name": bob.full_name,
            "used": 20.5,
            "reserved": 600.0,
            "jobs": 2,
        },
        {
            "learner_id": str(fixture_learner.id),
            "email": fixture_learner.email,
            "full_name": fixture_learner.full_name,
            "used": 2.5,
            "reserved": 0.0,
            "jobs": 1,
        },
    ]
    expected_days = {}
    day = _month_start().date()
    while day <= now.date():
        expected_days[day.isoformat()] = 0.0
        day += timedelta(days=1)
    expected_days[first_day.date().isoformat()] += 100.0
    expected_days[now.date().isoformat()] += 53.0  # 30 + 20.5 + the fixture's 2.5
    assert body["by_day"] == [{"day": d, "used": used} for d, used in expected_days.items()]


def test_usage_takes_the_same_queries_for_more_courses_learners_and_jobs(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    client.get("/api/v1/t/alpha/usage/")  # warm up anything loaded once per process

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/t/alpha/usage/").status_code == 200
        return len(captured)

    few = queries()
    now = timezone.now()
    for title in ("Vision", "Speech", "Robotics"):
        course = CourseFactory(tenant=tenant_a.tenant, title=title)
        learner = enrolled_learner(tenant_a, course=course)
        job = submit(tenant_a, learner, AssignmentFactory(exercise=ExerciseFactory(course=course)))
        run(job.job, started=now - timedelta(seconds=10), seconds=5)
    assert queries() == few
    assert len(client.get("/api/v1/t/alpha/usage/").json()["by_course"]) == 4
