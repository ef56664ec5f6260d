"""The console pages: platform administrators see tenants, workers and queue depth, suspend and
reactivate tenants and cancel jobs; anyone else gets 404 (anonymous: the login page) and nothing
changes."""

import pytest
from django.core import mail
from django_scopes import scopes_disabled

from apps.audit.models import AuditEntry
from apps.jobs.models import Job
from apps.quotas.models import TenantQuota
from apps.tenants.models import Invitation, Tenant
from tests.conftest import page_client_for
from tests.console.support import job_in
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

QUOTA_FORM = {
    "period": "week",
    "gpu_hours": "2",
    "max_running_jobs": "3",
    "max_queued_jobs": "40",
    "max_seconds_per_job": "900",
    "learner_gpu_hours_per_day": "",
    "pools": ["gpu"],
    "storage_gib": "2.5",
    "predictions_per_day": "500",
}


@pytest.fixture
def running_job(tenant_a):
    return job_in(tenant_a, state="running", owner="celery@gpu-1:101")


def test_the_console_shows_tenants_workers_and_queue_depth(
    platform_admin,
    tenant_a,
    tenant_b,
    running_job,
    beats,
    settings,
):
    settings.POOL_SLOTS = {"gpu": 4}
    beats("celery@gpu-1", age=2, pid=101, queues=["gpu"], device="NVIDIA H100 80GB HBM3")
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
    assert "<td>NVIDIA H100 80GB HBM3</td>" in html
    # The fixtures' quota: an hour a month, 2.5 GPU-seconds charged to the graded job.
    assert "<td>2.5 s of 1 h a month (0%)</td>" in html
    assert 'href="/console/tenants/alpha/quota/" aria-label="Quota of School ALPHA"' in html
    assert 'href="/console/tenants/new/"' in html
    # The pool: 4 slots, 1 running, none handed over and waiting for a worker.
    assert "<tr><td>gpu</td><td>4</td><td>1</td><td>0</td><td>25%</td></tr>" in html


def test_suspending_and_reactivating_from_the_console_is_audited(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    response = client.post("/console/tenants/alpha/suspend/", {"confirm": "yes"})
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
    response = page_client_for(platform_admin).post(
        f"/console/jobs/{running_job.id}/cancel/", {"confirm": "yes"}
    )
    assert (response.status_code, response["Location"]) == (302, "/console/")
    with scopes_disabled():
        job = Job.objects.get(pk=running_job.pk)
    assert (job.state, job.cancel_requested_by) == ("running", platform_admin)


def test_cancelling_an_ended_job_says_so_and_changes_nothing(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    before = db_snapshot()
    response = client.post(
        f"/console/jobs/{tenant_a.job.id}/cancel/", {"confirm": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert "This job has already ended (succeeded)." in response.content.decode()
    assert db_snapshot() == before


def test_suspend_and_cancel_without_confirmation_ask_and_change_nothing(
    platform_admin, tenant_a, running_job
):
    client = page_client_for(platform_admin)
    before = db_snapshot()  # after the login
    suspend = client.post("/console/tenants/alpha/suspend/")
    assert suspend.status_code == 200
    html = suspend.content.decode()
    assert '<h1 id="confirm-heading">Suspend School ALPHA?</h1>' in html
    assert '<button type="submit" class="danger">Yes, suspend School ALPHA</button>' in html
    assert '<a href="/console/">No, go back</a>' in html
    cancel = client.post(f"/console/jobs/{running_job.id}/cancel/", {"confirm": "no"})
    assert cancel.status_code == 200
    assert f"Cancel job {running_job.id} of School ALPHA?" in cancel.content.decode()
    assert db_snapshot() == before
    tenant_a.tenant.refresh_from_db()
    with scopes_disabled():
        job = Job.objects.get(pk=running_job.pk)
    assert (tenant_a.tenant.is_active, job.cancel_requested_by) == (True, None)


@pytest.mark.parametrize("role", ["admin", "teacher", "learner"])
def test_tenant_roles_get_404_and_change_nothing(tenant_a, running_job, role):
    client = page_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    assert client.get("/console/").status_code == 404
    for url in (
        "/console/tenants/alpha/suspend/",
        "/console/tenants/alpha/reactivate/",
        f"/console/jobs/{running_job.id}/cancel/",
        "/console/tenants/new/",
        "/console/tenants/alpha/quota/",
    ):
        assert client.post(url, QUOTA_FORM).status_code == 404, url
    for url in ("/console/tenants/new/", "/console/tenants/alpha/quota/"):
        assert client.get(url).status_code == 404, url
    assert db_snapshot() == before


def test_anonymous_visitors_are_sent_to_log_in(tenant_a):
    client = page_client_for(None)
    before = db_snapshot()
    response = client.get("/console/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/console/")
    response = client.post("/console/tenants/alpha/suspend/")
    assert response.status_code == 302
    assert db_snapshot() == before


def test_a_platform_admin_creates_a_tenant_and_invites_its_first_administrator(
    platform_admin, django_capture_on_commit_callbacks
):
    client = page_client_for(platform_admin)
    form = client.get("/console/tenants/new/")
    assert form.status_code == 200
    assert '<label for="id_admin_email">First administrator' in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the invitation is mailed then
        response = client.post(
            "/console/tenants/new/",
            {"name": "Harbour College", "slug": "harbour", "admin_email": "Head@Harbour.example"},
        )
    assert (response.status_code, response["Location"]) == (302, "/console/")
    with scopes_disabled():
        tenant = Tenant.objects.get(slug="harbour")
        invitation = Invitation.objects.get(tenant=tenant)
        actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor"))
    assert (tenant.name, tenant.is_active) == ("Harbour College", True)
    assert (invitation.email, invitation.role) == ("head@harbour.example", "admin")
    assert actions == [
        ("tenant.create", platform_admin.id),
        ("invitation.create", platform_admin.id),
    ]
    assert [m.to for m in mail.outbox] == [["head@harbour.example"]]
    page = client.get("/console/").content.decode()
    assert "Harbour College is created; invitation sent to head@harbour.example." in page


def test_a_tenant_can_be_created_without_an_administrator(platform_admin):
    client = page_client_for(platform_admin)
    response = client.post("/console/tenants/new/", {"name": "Quay", "slug": "quay"})
    assert response.status_code == 302
    with scopes_disabled():
        assert Tenant.objects.filter(slug="quay").exists()
        assert not Invitation.objects.filter(tenant__slug="quay").exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "Again", "slug": "alpha"}, "slug", "Tenant with this Slug already exists."),
        ({"name": "Bad", "slug": "Not a slug!"}, "slug", "Enter a valid “slug”"),
        ({"name": "", "slug": "empty"}, "name", "This field is required."),
        (
            {"name": "Mail", "slug": "mail", "admin_email": "nobody"},
            "admin_email",
            "Enter a valid email address.",
        ),
    ],
)
def test_a_bad_tenant_form_names_the_field_and_creates_nothing(
    platform_admin, tenant_a, data, field, message
):
    client = page_client_for(platform_admin)
    before = db_snapshot()
    response = client.post("/console/tenants/new/", data)
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(message)
    assert db_snapshot() == before
    assert mail.outbox == []


def test_a_platform_admin_sets_a_tenants_quota_in_a_form(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    form = client.get("/console/tenants/alpha/quota/")
    assert form.status_code == 200
    # The form starts from the quota as it is (the fixtures' hour a month).
    assert form.context["form"].initial["gpu_hours"] == 1
    assert '<input type="number" name="gpu_hours" value="1"' in form.content.decode()
    assert "2.5 s used and 0 s reserved of 1 h; 59 min 57 s left." in form.content.decode()
    assert form.context["form"].initial["storage_gib"] == 5
    assert "Model storage: 0\xa0bytes of 5.0\xa0GB used." in form.content.decode()
    response = client.post("/console/tenants/alpha/quota/", QUOTA_FORM)
    assert (response.status_code, response["Location"]) == (302, "/console/")
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=tenant_a.tenant)
        entry = AuditEntry.objects.get(action="quota.update")
    assert (quota.period, quota.gpu_seconds, quota.max_running_jobs) == ("week", 7200, 3)
    assert (quota.max_queued_jobs, quota.max_seconds_per_job) == (40, 900)
    assert (quota.learner_gpu_seconds_per_day, quota.pools) == (None, ["gpu"])
    assert (quota.storage_bytes, quota.predictions_per_day) == (int(2.5 * 2**30), 500)
    assert (entry.actor, entry.before["gpu_seconds"], entry.after["gpu_seconds"]) == (
        platform_admin,
        3600,
        7200,
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"gpu_hours": "0"}, "gpu_hours", "Ensure this value is greater than or equal to 0.001."),
        ({"gpu_hours": "1.0001"}, "gpu_hours", "Ensure that there are no more than 3 decimal"),
        ({"pools": ["tpu"]}, "pools", "Select a valid choice. tpu is not one of the available"),
        ({"pools": []}, "pools", "This field is required."),
        ({"period": "year"}, "period", "Select a valid choice. year is not one of the available"),
        ({"max_running_jobs": "two"}, "max_running_jobs", "Enter a whole number."),
        ({"storage_gib": "-1"}, "storage_gib", "Ensure this value is greater than or equal to 0."),
    ],
)
def test_a_bad_quota_form_names_the_field_and_changes_nothing(
    platform_admin, tenant_a, change, field, message
):
    client = page_client_for(platform_admin)
    before = db_snapshot()
    response = client.post("/console/tenants/alpha/quota/", {**QUOTA_FORM, **change})
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(message)
    assert db_snapshot() == before


def test_the_quota_form_takes_gpu_hours_and_stores_gpu_seconds(platform_admin, tenant_a):
    client = page_client_for(platform_admin)
    form = {**QUOTA_FORM, "gpu_hours": "1.5", "learner_gpu_hours_per_day": "0.25"}
    response = client.post("/console/tenants/alpha/quota/", form)
    assert (response.status_code, response["Location"]) == (302, "/console/")
    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=tenant_a.tenant)
    assert (quota.gpu_seconds, quota.learner_gpu_seconds_per_day) == (5400, 900)
    page = client.get("/console/tenants/alpha/quota/").content.decode()
    assert '<input type="number" name="gpu_hours" value="1.5"' in page
    assert '<input type="number" name="learner_gpu_hours_per_day" value="0.25"' in page


def test_the_quota_page_of_an_unknown_tenant_is_404(platform_admin):
    client = page_client_for(platform_admin)
    assert client.get("/console/tenants/nowhere/quota/").status_code == 404
    before = db_snapshot()
    assert client.post("/console/tenants/nowhere/quota/", QUOTA_FORM).status_code == 404
    assert db_snapshot() == before
