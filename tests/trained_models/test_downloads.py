"""Downloads of a model's files and its card: the learner who trained it and the teachers of
its course get the exact bytes; another learner, another tenant's id and the anonymous get
nothing (404, or 401 / the login page as the rest of the API and pages answer), with no side
effect."""

import pytest
from django_scopes import scope, scopes_disabled

from apps.audit.models import AuditEntry
from apps.trained_models.models import ArtifactBlob
from apps.trained_models.selectors import trained_model_list
from tests.conftest import api_client_for, page_client_for
from tests.factories import MembershipFactory
from tests.snapshots import db_snapshot
from tests.trained_models.conftest import files_in, sha256, store

pytestmark = pytest.mark.django_db

ONNX, WEIGHTS = "model.onnx", "weights.safetensors"


@pytest.fixture
def model(tenant_a, artifacts_dir, onnx_bytes, weights_bytes):
    return store(tenant_a, onnx=onnx_bytes, weights=weights_bytes)


def _api(model, what="") -> str:
    return f"/api/v1/t/alpha/models/{model.id}/{what}"


def _page(model, what) -> str:
    return f"/t/alpha/models/{model.id}/{what}"


def _filename(model, suffix) -> str:
    return f"xor-at-alpha-{str(model.id)[:8]}.{suffix}"


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("who", ["learner", "teacher", "admin"])
def test_who_may_see_the_model_downloads_its_exact_bytes(
    who, tenant_a, model, onnx_bytes, weights_bytes
):
    user = getattr(tenant_a, who).user
    for client, url in ((api_client_for(user), _api), (page_client_for(user), _page)):
        response = client.get(url(model, ONNX))
        assert response.status_code == 200
        assert (response["Content-Type"], response["Content-Disposition"]) == (
            "application/octet-stream",
            f'attachment; filename="{_filename(model, "onnx")}"',
        )
        assert _body(response) == onnx_bytes
        response = client.get(url(model, WEIGHTS))
        assert response.status_code == 200
        assert response["Content-Disposition"] == (
            f'attachment; filename="{_filename(model, "safetensors")}"'
        )
        assert _body(response) == weights_bytes


def test_the_card_names_the_files_and_where_to_get_them(tenant_a, model, onnx_bytes):
    response = api_client_for(tenant_a.learner.user).get(_api(model))
    assert response.status_code == 200
    body = response.json()
    assert body["onnx"] == {
        "sha256": sha256(onnx_bytes),
        "size": len(onnx_bytes),
        "url": _api(model, ONNX),
    }
    assert body["weights"]["url"] == _api(model, WEIGHTS)
    assert (body["id"], body["submission"], body["learner"]) == (
        str(model.id),
        str(model.submission_id),
        tenant_a.learner.user.email,
    )
    assert (body["card"], body["metrics"], body["parameter_count"]) == (
        {"dataset": "xor", "classes": ["0", "1"]},
        {"accuracy": 0.75},
        6,
    )


def test_a_model_without_weights_has_no_weights_link_and_its_download_is_404(
    tenant_a, artifacts_dir, onnx_bytes
):
    model = store(tenant_a, onnx=onnx_bytes, weights=None)
    client = api_client_for(tenant_a.learner.user)
    assert client.get(_api(model)).json()["weights"] is None
    assert client.get(_api(model, WEIGHTS)).status_code == 404
    assert page_client_for(tenant_a.learner.user).get(_page(model, WEIGHTS)).status_code == 404


def _refused_everywhere(client, model, status: int) -> None:
    before = db_snapshot()
    for what in ("", ONNX, WEIGHTS):
        response = client.get(_api(model, what))
        assert response.status_code == status, what
        assert response.get("Content-Disposition") is None
    assert db_snapshot() == before


def test_another_learner_of_the_course_is_answered_404(tenant_a, model, artifacts_dir):
    other = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    files = files_in(artifacts_dir)
    _refused_everywhere(api_client_for(other), model, 404)
    pages = page_client_for(other)  # its login writes last_login: before the snapshot
    before = db_snapshot()
    for what in (ONNX, WEIGHTS):
        assert pages.get(_page(model, what)).status_code == 404
    assert (db_snapshot(), files_in(artifacts_dir)) == (before, files)


def test_a_teacher_of_another_course_is_answered_404(tenant_a, model):
    other_teacher = MembershipFactory(tenant=tenant_a.tenant, role="teacher").user
    _refused_everywhere(api_client_for(other_teacher), model, 404)


def test_another_tenants_model_id_is_404_and_nothing_is_logged(tenant_a, tenant_b, model):
    """tenant_b's admin asks for tenant_a's model under their own tenant's address."""
    client = api_client_for(tenant_b.admin.user)
    pages = page_client_for(tenant_b.admin.user)
    with scopes_disabled():
        audit_before = AuditEntry.objects.count()
    before = db_snapshot()
    for what in ("", ONNX, WEIGHTS):
        assert client.get(f"/api/v1/t/beta/models/{model.id}/{what}").status_code == 404
    for what in (ONNX, WEIGHTS):
        assert pages.get(f"/t/beta/models/{model.id}/{what}").status_code == 404
    assert db_snapshot() == before
    with scopes_disabled():
        assert AuditEntry.objects.count() == audit_before
    # And under tenant_a's address they are no member: 404 too.
    _refused_everywhere(client, model, 404)


def test_the_anonymous_get_401_from_the_api_and_the_login_page_from_pages(model):
    _refused_everywhere(api_client_for(None), model, 401)
    response = page_client_for(None).get(_page(model, ONNX))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_a_damaged_file_is_not_served(tenant_a, model, artifacts_dir):
    with scopes_disabled():
        blob = ArtifactBlob.objects.get(pk=model.onnx_id)
    (artifacts_dir / blob.storage_name).write_bytes(b"tampered")
    response = api_client_for(tenant_a.learner.user).get(_api(model, ONNX))
    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "artifact_unreadable",
            "message": "The stored file of this model cannot be read; ask an administrator.",
            "fields": {},
        }
    }


def test_the_list_shows_each_caller_the_models_they_may_see(
    tenant_a, tenant_b, artifacts_dir, onnx_bytes
):
    other = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    mine = store(tenant_a, onnx=onnx_bytes, weights=None)
    theirs = store(tenant_a, onnx=onnx_bytes, weights=None, learner=other)
    store(tenant_b, onnx=onnx_bytes, weights=None)
    outsider_teacher = MembershipFactory(tenant=tenant_a.tenant, role="teacher").user
    with scope(tenant=tenant_a.tenant):

        def ids(user, **kwargs):
            rows = trained_model_list(user=user, tenant=tenant_a.tenant, **kwargs)
            return {row.pk for row in rows}

        assert ids(tenant_a.learner.user) == {mine.pk}
        assert ids(other) == {theirs.pk}
        assert ids(tenant_a.teacher.user) == {mine.pk, theirs.pk}
        assert ids(tenant_a.admin.user, course=tenant_a.course) == {mine.pk, theirs.pk}
        assert ids(outsider_teacher) == set()
