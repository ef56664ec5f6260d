"""The console pages: platform administrators see tenants, workers and queue depth, suspend and
reactivate tenants and cancel jobs; anyone else gets 404 (anonymous: the login page) and nothing
changes."""

import pytest
from django_scopes import scopes_disabled

from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.tenants.models import Tenant
from tests.conftest import page_client_for
from tests.console.support import job_in
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_job(tenant_a):
    return job_in(tenant_a, state="running", owner="celery@gpu-1:101")


def test_the_console_shows_tenants_workers_and_queue_depth(
    platform_admin,
    tenant_a,
    tenant_b,
    running_job,
    beats,
):
    beats("celery@gpu-1", age=2, pid=101, queues=["gpu"])
    beats("celery@gpu-2", age=90, pid=202, queues=["gpu"])
    Tenant.objects.filter(pk=tenant_b.tenant.pk).update(is_active=False)
    response = page_client_for(platform_admin).get("/console/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'aria-label="Suspend School ALPHA"' in html
    assert 'aria-label="Reactivate School BETA"' in html
    assert "<td>celery@gpu-1 (pid 101)</td>" in html
    assert f"alpha · job {running_job.id} on cpu" in html
    assert "<td>2.0 s ago</td>" in html
    assert "<td>90.0 s ago · <strong>stale</strong></td>" in html
    assert "<tr><td>School ALPHA (alpha)</td><td>0</td><td>1</td></tr>" in html
    assert "<tr><td>gpu</td><td>0</td><td>1</td></tr>" in html


def test_suspending_and_reactivating_from_the_console_is_audited(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    response = client.post("/console/tenants/alpha/suspend/")
    assert (response.status_code, response["Location"]) == (302, "/console/")
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.is_active is False
    assert client.post("/console/tenants/alpha/reactivate/").status_code == 302
    tenant_a.tenant.refresh_from_db()
    assert tenant_a.tenant.is_active is True
    with scopes_disabled():
        rows = list(
            AuditEntry.objects.filter(tenant=None).order_by("id").values_list("action", "actor")
        )
    assert rows == [("tenant.suspend", platform_admin.id), ("tenant.reactivate", platform_admin.id)]


def test_cancelling_a_workers_job_from_the_console(platform_admin, running_job):
    response = page_client_for(platform_admin).post(f"/console/jobs/{running_job.id}/cancel/")
    assert (response.status_code, response["Location"]) == (302, "/console/")
    with scopes_disabled():
        job = Job.objects.get(pk=running_job.pk)
    assert (job.state, job.cancel_requested_by) == ("running", platform_admin)


def test_cancelling_an_ended_job_says_so_and_changes_nothing(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    before = db_snapshot()
    response = client.post(f"/console/jobs/{tenant_a.job.id}/cancel/", follow=True)
    assert response.status_code == 200
    assert "This job has already ended (succeeded)." in response.content.decode()
    assert db_snapshot() == before


@pytest.mark.parametrize("role", ["admin", "teacher", "learner"])
def test_tenant_roles_get_404_and_change_nothing(tenant_a, running_job, role):
    client = page_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    assert client.get("/console/").status_code == 404
    for url in (
        "/console/tenants/alpha/suspend/",
        "/console/tenants/alpha/reactivate/",
        f"/console/jobs/{running_job.id}/cancel/",
    ):
        assert client.post(url).status_code == 404, url
    assert db_snapshot() == before


def test_anonymous_visitors_are_sent_to_log_in(tenant_a):
    client = page_client_for(None)
    before = db_snapshot()
    response = client.get("/console/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/console/")
    response = client.post("/console/tenants/alpha/suspend/")
    assert response.status_code == 302
    assert db_snapshot() == before
