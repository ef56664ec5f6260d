"""Roles are enforced: each refusal is checked for its status and for no side effect."""

import pytest

from apps.tenants.models import Role
from tests.conftest import api_client_for, page_client_for
from tests.snapshots import db_snapshot
from tests.urlmap import all_routes


def _refused(client, method, url, status, body=None):
    before = db_snapshot()
    response = getattr(client, method)(url, data=body or {}, format="json")
    assert response.status_code == status, (method, url, response.content[:300])
    assert db_snapshot() == before
    return response


def _api_cases(world):
    t = world.tenant.slug
    member = f"/api/v1/t/{t}/members/{world.teacher.id}/"
    invitations = f"/api/v1/t/{t}/invitations/"
    return {
        "teacher": [("get", f"/api/v1/t/{t}/members/", None)],
        "admin": [
            ("patch", member, {"role": Role.ADMIN}),
            ("delete", member, None),
            ("get", invitations, None),
            ("post", invitations, {"email": "new@example.org", "role": Role.TEACHER}),
            ("delete", f"{invitations}{world.invitation.id}/", None),
        ],
    }


@pytest.mark.django_db
def test_a_learner_cannot_use_teacher_or_admin_endpoints(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    cases = _api_cases(tenant_a)
    for method, url, body in cases["teacher"] + cases["admin"]:
        response = _refused(client, method, url, 403, body)
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_a_teacher_cannot_use_admin_endpoints(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    for method, url, body in _api_cases(tenant_a)["admin"]:
        response = _refused(client, method, url, 403, body)
        assert response.json()["error"]["message"] == (
            "This needs the administrator role in this tenant."
        )
    assert client.get(f"/api/v1/t/{tenant_a.tenant.slug}/members/").status_code == 200


@pytest.mark.django_db
def test_teacher_and_admin_pages_answer_404_to_learners(tenant_a):
    client = page_client_for(tenant_a.learner.user)
    t = tenant_a.tenant.slug
    _refused(client, "get", f"/t/{t}/members/", 404)
    _refused(client, "post", f"/t/{t}/members/invite/", 404, {"email": "x@example.org"})
    _refused(client, "post", f"/t/{t}/members/{tenant_a.teacher.id}/role/", 404, {"role": "admin"})
    _refused(client, "post", f"/t/{t}/members/{tenant_a.teacher.id}/remove/", 404)
    _refused(client, "post", f"/t/{t}/invitations/{tenant_a.invitation.id}/revoke/", 404)
    assert client.get(f"/t/{t}/").status_code == 200


@pytest.mark.django_db
def test_a_teacher_sees_members_but_cannot_manage_them(tenant_a):
    client = page_client_for(tenant_a.teacher.user)
    t = tenant_a.tenant.slug
    page = client.get(f"/t/{t}/members/")
    assert page.status_code == 200
    assert b"Send invitation" not in page.content
    _refused(client, "post", f"/t/{t}/members/invite/", 404, {"email": "x@example.org"})
    _refused(client, "post", f"/t/{t}/members/{tenant_a.learner.id}/role/", 404, {"role": "admin"})


def _platform_routes():
    return [r for r in all_routes() if r.route.startswith("api/v1/platform/")]


@pytest.mark.django_db
def test_a_tenant_admin_cannot_reach_the_platform_api(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    assert _platform_routes()
    for route in _platform_routes():
        url = route.build({"slug": tenant_a.tenant.slug, "job_id": tenant_a.job.id})
        for method in ("get", "post", "patch", "put", "delete"):
            if not hasattr(route.view_class, method):  # a method it lacks: 405 to everyone
                _refused(client, method, url, 405, {"is_active": False})
                continue
            response = _refused(client, method, url, 403, {"is_active": False})
            assert response.json()["error"]["message"] == "This needs a platform administrator."


@pytest.mark.django_db
def test_a_tenant_admin_cannot_use_the_django_admin(tenant_a):
    client = page_client_for(tenant_a.admin.user)
    response = _refused(client, "get", "/admin/tenants/tenant/", 302)
    assert response["Location"].startswith("/admin/login/")
    _refused(
        client, "post", f"/admin/tenants/tenant/{tenant_a.tenant.id}/delete/", 302, {"post": 1}
    )


@pytest.mark.django_db
def test_a_tenant_admin_manages_their_own_tenant(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    t = tenant_a.tenant.slug
    response = client.patch(
        f"/api/v1/t/{t}/members/{tenant_a.learner.id}/", {"role": "teacher"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "teacher"
    tenant_a.learner.refresh_from_db()
    assert tenant_a.learner.role == Role.TEACHER


@pytest.mark.django_db
def test_the_last_admin_cannot_be_demoted_or_removed(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    url = f"/api/v1/t/{tenant_a.tenant.slug}/members/{tenant_a.admin.id}/"
    response = _refused(client, "patch", url, 400, {"role": "learner"})
    assert response.json()["error"]["fields"] == {
        "role": ["This is the tenant's last administrator; the change would leave none."]
    }
    response = _refused(client, "delete", url, 400)
    assert response.json()["error"]["fields"] == {
        "role": ["This is the tenant's last administrator; removing them would leave none."]
    }


@pytest.mark.django_db
def test_a_platform_admin_creates_and_suspends_tenants(platform_admin, tenant_a):
    client = api_client_for(platform_admin)
    response = client.post(
        "/api/v1/platform/tenants/", {"slug": "gamma", "name": "Gamma Corp"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["slug"] == "gamma"
    dupe = _refused(
        client, "post", "/api/v1/platform/tenants/", 400, {"slug": "gamma", "name": "Again"}
    )
    assert dupe.json()["error"]["fields"] == {"slug": ["Tenant with this Slug already exists."]}
    response = client.patch(
        f"/api/v1/platform/tenants/{tenant_a.tenant.slug}/", {"is_active": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    listing = client.get("/api/v1/platform/tenants/").json()
    assert [t["slug"] for t in listing["results"]] == ["gamma", "alpha"]
    assert listing["count"] == 2


@pytest.mark.django_db
def test_a_suspended_tenant_answers_403_to_members_but_not_platform_admins(
    tenant_a, platform_admin
):
    tenant_a.tenant.is_active = False
    tenant_a.tenant.save()
    t = tenant_a.tenant.slug
    for user in (tenant_a.admin.user, tenant_a.learner.user):
        response = _refused(api_client_for(user), "get", f"/api/v1/t/{t}/", 403)
        assert response.json()["error"]["message"] == "This tenant is suspended."
        _refused(page_client_for(user), "get", f"/t/{t}/", 403)
    assert api_client_for(platform_admin).get(f"/api/v1/t/{t}/").status_code == 200
    assert page_client_for(platform_admin).get(f"/t/{t}/").status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_are_refused(tenant_a):
    t = tenant_a.tenant.slug
    response = _refused(api_client_for(None), "get", f"/api/v1/t/{t}/", 401)
    assert response.json()["error"]["code"] == "not_authenticated"
    response = _refused(page_client_for(None), "get", f"/t/{t}/members/", 302)
    assert response["Location"] == f"/accounts/login/?next=/t/{t}/members/"
