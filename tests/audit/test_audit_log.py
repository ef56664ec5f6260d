"""The audit log: every administrative action writes one row with its actor, before and after,
in the action's own transaction; a refused action writes none; who may read which rows."""

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django_scopes import scope, scopes_disabled

from apps.audit.models import AuditEntry, AuditEntryImmutable
from apps.audit.services import audit_record
from apps.jobs.models import Grade
from apps.tenants.models import Invitation, Membership, Tenant
from tests.conftest import api_client_for, page_client_for
from tests.console.support import job_in
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def _entries() -> list[AuditEntry]:
    with scopes_disabled():
        return list(AuditEntry.objects.select_related("tenant").order_by("id"))


def _only_entry() -> dict:
    """The one audit row written, as the fields that say who did what."""
    entries = _entries()
    assert len(entries) == 1, [str(e) for e in entries]
    entry = entries[0]
    return {
        "tenant": entry.tenant.slug if entry.tenant else None,
        "actor": entry.actor.email if entry.actor else None,
        "actor_email": entry.actor_email,
        "action": entry.action,
        "target": (entry.target_type, entry.target_id),
        "before": entry.before,
        "after": entry.after,
    }


def _iso(moment) -> str:
    return DjangoJSONEncoder().default(moment)


def _t(world, path: str) -> str:
    return f"/api/v1/t/{world.tenant.slug}/{path}"


# --- One test per audited action -------------------------------------------------------------


def test_creating_a_tenant_is_a_platform_entry(platform_admin):
    response = api_client_for(platform_admin).post(
        "/api/v1/platform/tenants/", {"slug": "gamma", "name": "Gamma Corp"}, format="json"
    )
    assert response.status_code == 201
    tenant = Tenant.objects.get(slug="gamma")
    assert _only_entry() == {
        "tenant": None,
        "actor": "root@example.org",
        "actor_email": "root@example.org",
        "action": "tenant.create",
        "target": ("tenants.tenant", str(tenant.id)),
        "before": None,
        "after": {"slug": "gamma", "name": "Gamma Corp", "is_active": True},
    }


@pytest.mark.parametrize(
    "change,action,after",
    [
        ({"is_active": False}, "tenant.suspend", {"name": "School ALPHA", "is_active": False}),
        ({"name": "Alpha Academy"}, "tenant.update", {"name": "Alpha Academy", "is_active": True}),
    ],
)
def test_suspending_or_renaming_a_tenant_is_recorded(
    platform_admin, tenant_a, change, action, after
):
    url = f"/api/v1/platform/tenants/{tenant_a.tenant.slug}/"
    assert api_client_for(platform_admin).patch(url, change, format="json").status_code == 200
    assert _only_entry() == {
        "tenant": None,
        "actor": "root@example.org",
        "actor_email": "root@example.org",
        "action": action,
        "target": ("tenants.tenant", str(tenant_a.tenant.id)),
        "before": {"slug": "alpha", "name": "School ALPHA", "is_active": True},
        "after": {"slug": "alpha", **after},
    }


def test_reactivating_a_tenant_is_recorded_and_a_patch_that_changes_nothing_is_not(
    platform_admin, tenant_a
):
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(is_active=False)
    client = api_client_for(platform_admin)
    url = f"/api/v1/platform/tenants/{tenant_a.tenant.slug}/"
    assert client.patch(url, {"is_active": True}, format="json").status_code == 200
    assert client.patch(url, {"is_active": True}, format="json").status_code == 200
    entry = _only_entry()
    assert (entry["action"], entry["before"]["is_active"], entry["after"]["is_active"]) == (
        "tenant.reactivate",
        False,
        True,
    )


def test_setting_a_role_is_recorded_in_the_tenant(tenant_a):
    admin, learner = tenant_a.admin.user, tenant_a.learner.user
    response = api_client_for(admin).patch(
        _t(tenant_a, f"members/{tenant_a.learner.id}/"), {"role": "teacher"}, format="json"
    )
    assert response.status_code == 200
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": admin.email,
        "actor_email": admin.email,
        "action": "membership.role_set",
        "target": ("tenants.membership", str(tenant_a.learner.id)),
        "before": {"email": learner.email, "role": "learner"},
        "after": {"email": learner.email, "role": "teacher"},
    }


def test_setting_a_role_from_the_members_page_records_the_pages_user(tenant_a):
    admin, learner = tenant_a.admin.user, tenant_a.learner.user
    response = page_client_for(admin).post(
        f"/t/alpha/members/{tenant_a.learner.id}/role/", {"role": "admin"}
    )
    assert response.status_code == 302
    entry = _only_entry()
    assert (entry["actor"], entry["action"], entry["before"], entry["after"]) == (
        admin.email,
        "membership.role_set",
        {"email": learner.email, "role": "learner"},
        {"email": learner.email, "role": "admin"},
    )


def test_removing_a_member_is_recorded(tenant_a):
    admin, teacher = tenant_a.admin.user, tenant_a.teacher.user
    response = api_client_for(admin).delete(_t(tenant_a, f"members/{tenant_a.teacher.id}/"))
    assert response.status_code == 204
    with scope(tenant=tenant_a.tenant):
        assert not Membership.objects.filter(pk=tenant_a.teacher.pk).exists()
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": admin.email,
        "actor_email": admin.email,
        "action": "membership.remove",
        "target": ("tenants.membership", str(tenant_a.teacher.id)),
        "before": {"email": teacher.email, "role": "teacher"},
        "after": None,
    }


def test_inviting_is_recorded_and_inviting_again_records_the_previous_invitation(tenant_a):
    admin = tenant_a.admin.user
    client = api_client_for(admin)
    url = _t(tenant_a, "invitations/")
    payload = {"email": "New.Person@Example.org", "role": "teacher"}
    assert client.post(url, payload, format="json").status_code == 201
    with scope(tenant=tenant_a.tenant):
        first = Invitation.objects.get(email="new.person@example.org")
    entry = _only_entry()
    assert entry == {
        "tenant": "alpha",
        "actor": admin.email,
        "actor_email": admin.email,
        "action": "invitation.create",
        "target": ("tenants.invitation", str(first.id)),
        "before": None,
        "after": {
            "email": "new.person@example.org",
            "role": "teacher",
            "expires_at": _iso(first.expires_at),
        },
    }
    payload["role"] = "learner"
    assert client.post(url, payload, format="json").status_code == 201
    with scope(tenant=tenant_a.tenant):
        again = Invitation.objects.get(email="new.person@example.org")
    second = _entries()[1]
    assert (second.action, second.target_id, second.before, second.after) == (
        "invitation.create",
        str(first.id),
        entry["after"],
        {
            "email": "new.person@example.org",
            "role": "learner",
            "expires_at": _iso(again.expires_at),
        },
    )


def test_revoking_an_invitation_is_recorded(tenant_a):
    admin, invitation = tenant_a.admin.user, tenant_a.invitation
    url = _t(tenant_a, f"invitations/{invitation.id}/")
    assert api_client_for(admin).delete(url).status_code == 204
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": admin.email,
        "actor_email": admin.email,
        "action": "invitation.revoke",
        "target": ("tenants.invitation", str(invitation.id)),
        "before": {
            "email": invitation.email,
            "role": invitation.role,
            "expires_at": _iso(invitation.expires_at),
        },
        "after": None,
    }


def test_overriding_a_grade_is_recorded(tenant_a):
    teacher = tenant_a.teacher.user
    response = api_client_for(teacher).post(
        _t(tenant_a, f"submissions/{tenant_a.submission.id}/grade/"),
        {"score": "95.50", "reason": "Reviewed by hand"},
        format="json",
    )
    assert response.status_code == 200
    with scope(tenant=tenant_a.tenant):
        grade = Grade.objects.get(submission=tenant_a.submission)
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": teacher.email,
        "actor_email": teacher.email,
        "action": "grade.override",
        "target": ("jobs.grade", str(grade.id)),
        "before": {"score": "80.00", "source": "automatic"},
        "after": {"score": "95.50", "source": "teacher", "reason": "Reviewed by hand"},
    }


def test_setting_a_tenants_quota_is_recorded_in_that_tenant(platform_admin, tenant_a):
    response = api_client_for(platform_admin).patch(
        f"/api/v1/platform/tenants/{tenant_a.tenant.slug}/quota/",
        {"gpu_seconds": 7200, "max_running_jobs": 3},
        format="json",
    )
    assert response.status_code == 200, response.content
    unchanged = {
        "period": "month",
        "max_queued_jobs": 100,
        "max_seconds_per_job": 600,
        "learner_gpu_seconds_per_day": None,
        "pools": ["gpu"],
        "storage_bytes": 5 * 1024**3,
        "predictions_per_day": 10_000,
    }
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": platform_admin.email,
        "actor_email": platform_admin.email,
        "action": "quota.update",
        "target": ("quotas.tenantquota", str(tenant_a.tenant.id)),
        "before": {**unchanged, "gpu_seconds": 3600, "max_running_jobs": 2},
        "after": {**unchanged, "gpu_seconds": 7200, "max_running_jobs": 3},
    }


def test_a_quota_patch_that_changes_nothing_writes_no_audit_row(platform_admin, tenant_a):
    response = api_client_for(platform_admin).patch(
        f"/api/v1/platform/tenants/{tenant_a.tenant.slug}/quota/",
        {"gpu_seconds": 3600},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert _entries() == []


@pytest.fixture
def running_job(tenant_a):
    return job_in(tenant_a, state="running", owner="celery@gpu-1:101")


def test_a_tenant_admin_cancelling_a_job_is_recorded(tenant_a, running_job):
    admin = tenant_a.admin.user
    response = api_client_for(admin).post(_t(tenant_a, f"jobs/{running_job.id}/cancel/"))
    assert response.status_code == 200
    assert _only_entry() == {
        "tenant": "alpha",
        "actor": admin.email,
        "actor_email": admin.email,
        "action": "job.cancel",
        "target": ("jobs.job", str(running_job.id)),
        "before": {"state": "running"},
        "after": {"state": "running", "cancel_requested": True},
    }


def test_a_platform_admin_cancelling_a_job_is_recorded_in_its_tenant(
    platform_admin, tenant_a, running_job
):
    response = api_client_for(platform_admin).post(
        f"/api/v1/platform/jobs/{running_job.id}/cancel/"
    )
    assert response.status_code == 200
    entry = _only_entry()
    assert (entry["tenant"], entry["actor"], entry["action"], entry["after"]) == (
        "alpha",
        "root@example.org",
        "job.cancel",
        {"state": "running", "cancel_requested": True},
    )


# --- Refusals write nothing ------------------------------------------------------------------


def test_demoting_the_last_admin_writes_no_audit_row(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    url = _t(tenant_a, f"members/{tenant_a.admin.id}/")
    before = db_snapshot()
    assert client.patch(url, {"role": "learner"}, format="json").status_code == 400
    assert client.delete(url).status_code == 400
    assert db_snapshot() == before
    assert _entries() == []


def test_cancelling_a_finished_job_writes_no_audit_row(platform_admin, tenant_a):
    client = api_client_for(platform_admin)
    before = db_snapshot()
    response = client.post(f"/api/v1/platform/jobs/{tenant_a.job.id}/cancel/")
    assert response.status_code == 409
    assert db_snapshot() == before


def test_an_action_that_rolls_back_takes_its_audit_row_with_it(platform_admin):
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant = Tenant.objects.create(slug="delta", name="Delta")
        audit_record(
            actor=platform_admin, action="tenant.create", target=tenant, before=None, after={}
        )
        raise RuntimeError("the action failed after its audit row was written")
    assert _entries() == []


@pytest.mark.django_db(transaction=True)  # outside the test's own transaction
def test_audit_record_refuses_to_run_outside_a_transaction(platform_admin, tenant_a):
    with pytest.raises(RuntimeError, match="inside the action's transaction"):
        audit_record(
            actor=platform_admin, action="x", target=tenant_a.tenant, before=None, after=None
        )
    assert _entries() == []


def test_entries_cannot_be_changed_or_deleted(platform_admin, tenant_a):
    with transaction.atomic():
        entry = audit_record(
            actor=platform_admin, action="x", target=tenant_a.tenant, before=None, after={"a": 1}
        )
    entry.action = "y"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    assert [(e.action, e.after) for e in _entries()] == [("x", {"a": 1})]


# --- Who reads what --------------------------------------------------------------------------


def _act_in_both_tenants(platform_admin, tenant_a, tenant_b):
    """A platform action, then a role change in A and one in B."""
    api_client_for(platform_admin).patch(
        f"/api/v1/platform/tenants/{tenant_b.tenant.slug}/", {"name": "Beta"}, format="json"
    )
    for world in (tenant_a, tenant_b):
        response = api_client_for(world.admin.user).patch(
            _t(world, f"members/{world.learner.id}/"), {"role": "teacher"}, format="json"
        )
        assert response.status_code == 200
    return _entries()


def _row(entry: AuditEntry, **extra) -> dict:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat().replace("+00:00", "Z"),
        "actor": entry.actor_email,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
        **extra,
    }


def test_a_tenant_admin_reads_their_tenants_entries_only(platform_admin, tenant_a, tenant_b):
    platform_row, in_a, _in_b = _act_in_both_tenants(platform_admin, tenant_a, tenant_b)
    assert platform_row.tenant is None
    response = api_client_for(tenant_a.admin.user).get(_t(tenant_a, "audit/"))
    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [_row(in_a)],
    }
    assert response.json()["results"][0]["after"] == {
        "email": tenant_a.learner.user.email,
        "role": "teacher",
    }


def test_a_platform_admin_reads_every_entry_newest_first(platform_admin, tenant_a, tenant_b):
    platform_row, in_a, in_b = _act_in_both_tenants(platform_admin, tenant_a, tenant_b)
    response = api_client_for(platform_admin).get("/api/v1/platform/audit/")
    assert response.status_code == 200
    assert response.json() == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [
            _row(in_b, tenant="beta"),
            _row(in_a, tenant="alpha"),
            _row(platform_row, tenant=None),
        ],
    }


def test_the_log_filters_by_action_and_pages(platform_admin, tenant_a, tenant_b):
    platform_row, in_a, _in_b = _act_in_both_tenants(platform_admin, tenant_a, tenant_b)
    client = api_client_for(platform_admin)
    response = client.get("/api/v1/platform/audit/?action=tenant.update")
    assert response.json()["results"] == [_row(platform_row, tenant=None)]
    response = client.get("/api/v1/platform/audit/?page_size=2&page=2")
    assert (response.json()["count"], response.json()["results"]) == (
        3,
        [_row(platform_row, tenant=None)],
    )
    response = api_client_for(tenant_a.admin.user).get(
        _t(tenant_a, "audit/?action=membership.role_set")
    )
    assert response.json()["results"] == [_row(in_a)]
    response = api_client_for(tenant_a.admin.user).get(_t(tenant_a, "audit/?action=tenant.update"))
    assert response.json()["results"] == []


@pytest.mark.parametrize("role", ["learner", "teacher"])
def test_learners_and_teachers_are_refused_the_tenant_log(tenant_a, role):
    user = getattr(tenant_a, role).user
    response = api_client_for(user).get(_t(tenant_a, "audit/"))
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "This needs the administrator role in this tenant.",
            "fields": {},
        }
    }


def test_another_tenants_log_is_not_found(tenant_a, tenant_b):
    response = api_client_for(tenant_a.admin.user).get(_t(tenant_b, "audit/"))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_tenant_admin_is_refused_the_platform_log(tenant_a):
    response = api_client_for(tenant_a.admin.user).get("/api/v1/platform/audit/")
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "This needs a platform administrator.",
            "fields": {},
        }
    }
