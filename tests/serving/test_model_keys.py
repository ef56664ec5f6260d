"""Model API keys: the owner makes them (the secret shown once, only its hash kept), lists and
revokes them; a key predicts with its one model only, at its own rate, and stops at once when
revoked. Every refusal leaves the key's fields and the usage as they were."""

import hashlib

import pytest
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from apps.quotas.models import PredictionUsage
from apps.serving.models import ModelApiKey
from tests.conftest import api_client_for
from tests.serving.conftest import mlp_onnx, store_model
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def xor_model(tenant_a):
    return store_model(tenant_a, mlp_onnx(2, 2))


def _keys_url(world, model) -> str:
    return f"/api/v1/t/{world.tenant.slug}/models/{model.id}/keys/"


def _predict_url(world, model) -> str:
    return f"/api/v1/t/{world.tenant.slug}/models/{model.id}/predict"


def _key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _make_key(world, model, name="my app") -> tuple[dict, str]:
    response = api_client_for(world.learner.user).post(
        _keys_url(world, model), {"name": name}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    return body, body["key"]


def _key_row(key_id) -> ModelApiKey:
    with scopes_disabled():
        return ModelApiKey.objects.get(id=key_id)


def _usage() -> list[tuple[int, int]]:
    with scopes_disabled():
        return list(PredictionUsage.objects.values_list("requests", "samples"))


def test_the_owner_makes_a_key_shown_once_and_stored_as_a_hash(tenant_a, xor_model):
    body, raw = _make_key(tenant_a, xor_model)
    assert set(body) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "key"}
    assert raw.startswith("amk_") and len(raw) > 40
    assert body["prefix"] == raw[:12]
    row = _key_row(body["id"])
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(row.__dict__)
    listed = api_client_for(tenant_a.learner.user).get(_keys_url(tenant_a, xor_model))
    assert listed.status_code == 200
    assert listed.json() == [{k: v for k, v in body.items() if k != "key"}]
    # The course's teacher sees it too (to revoke a misused key), without the secret.
    assert api_client_for(tenant_a.teacher.user).get(_keys_url(tenant_a, xor_model)).json() == (
        listed.json()
    )


@pytest.mark.parametrize("role,status", [("teacher", 403), ("admin", 403)])
def test_only_the_owner_makes_keys(tenant_a, xor_model, role, status):
    client = api_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    response = client.post(_keys_url(tenant_a, xor_model), {"name": "x"}, format="json")
    assert response.status_code == status
    assert response.json()["error"]["message"] == "Only the model's owner makes keys for it."
    assert db_snapshot() == before


def test_a_key_predicts_and_is_marked_used(pool, tenant_a, xor_model):
    body, raw = _make_key(tenant_a, xor_model)
    response = _key_client(raw).post(
        _predict_url(tenant_a, xor_model), {"inputs": [[1, -1]]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert _key_row(body["id"]).last_used_at is not None
    assert _usage() == [(1, 1)]


def test_a_revoked_key_is_401_and_changes_nothing(pool, tenant_a, xor_model):
    body, raw = _make_key(tenant_a, xor_model)
    owner = api_client_for(tenant_a.learner.user)
    revoked = owner.delete(f"{_keys_url(tenant_a, xor_model)}{body['id']}/")
    assert revoked.status_code == 204
    row = _key_row(body["id"])
    assert row.revoked_at is not None
    before = db_snapshot()
    response = _key_client(raw).post(
        _predict_url(tenant_a, xor_model), {"inputs": [[1, -1]]}, format="json"
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "authentication_failed"
    assert error["message"].startswith("This API key was revoked on ")
    assert db_snapshot() == before
    assert _usage() == []
    assert _key_row(body["id"]).last_used_at is None
    # Revoking again keeps the first time.
    assert owner.delete(f"{_keys_url(tenant_a, xor_model)}{body['id']}/").status_code == 204
    assert _key_row(body["id"]).revoked_at == row.revoked_at


def test_a_key_for_another_model_is_404(pool, tenant_a, xor_model):
    other = store_model(tenant_a, mlp_onnx(2, 2, seed=5), dataset="xor")
    _, raw = _make_key(tenant_a, other)
    before = db_snapshot()
    response = _key_client(raw).post(
        _predict_url(tenant_a, xor_model), {"inputs": [[1, -1]]}, format="json"
    )
    assert response.status_code == 404
    assert db_snapshot() == before
    # Nor does a key open any other endpoint: it is not a credential there.
    assert _key_client(raw).get(_keys_url(tenant_a, other)).status_code == 401
    assert _key_client(raw).get(f"/api/v1/t/{tenant_a.tenant.slug}/").status_code == 401


def test_a_key_in_another_tenants_url_is_401(pool, tenant_a, tenant_b, xor_model):
    _, raw = _make_key(tenant_a, xor_model)
    url = f"/api/v1/t/{tenant_b.tenant.slug}/models/{xor_model.id}/predict"
    before = db_snapshot()
    response = _key_client(raw).post(url, {"inputs": [[1, -1]]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key is not valid."
    assert db_snapshot() == before


@pytest.mark.parametrize("header", ["Bearer amk_not-a-key", "Bearer", "Bearer a b"])
def test_a_wrong_key_is_401(tenant_a, xor_model, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(_predict_url(tenant_a, xor_model), {"inputs": [[1, -1]]}, format="json")
    assert response.status_code == 401


def test_a_key_is_rate_limited(pool, tenant_a, xor_model, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "model_key": "2/min",
        },
    }
    from rest_framework.throttling import SimpleRateThrottle

    rates = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    try:
        body, raw = _make_key(tenant_a, xor_model)
        client = _key_client(raw)
        url = _predict_url(tenant_a, xor_model)
        for _ in range(2):
            assert client.post(url, {"inputs": [[1, -1]]}, format="json").status_code == 200
        used_at = _key_row(body["id"]).last_used_at
        before = db_snapshot()
        response = client.post(url, {"inputs": [[1, -1]]}, format="json")
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "throttled"
        assert 0 < int(response["Retry-After"]) <= 60
        assert db_snapshot() == before
        assert _key_row(body["id"]).last_used_at == used_at
        # Another key of the same model has its own allowance; people are not throttled here.
        _, other = _make_key(tenant_a, xor_model, name="other")
        assert _key_client(other).post(url, {"inputs": [[1, -1]]}, format="json").status_code == 200
        owner = api_client_for(tenant_a.learner.user)
        assert owner.post(url, {"inputs": [[1, -1]]}, format="json").status_code == 200
    finally:
        SimpleRateThrottle.THROTTLE_RATES = rates
    assert _usage() == [(4, 4)]


def test_another_learner_cannot_see_or_revoke_keys(tenant_a, xor_model):
    from tests.factories import MembershipFactory

    body, _ = _make_key(tenant_a, xor_model)
    other = api_client_for(MembershipFactory(tenant=tenant_a.tenant, role="learner").user)
    before = db_snapshot()
    assert other.get(_keys_url(tenant_a, xor_model)).status_code == 404
    assert other.post(_keys_url(tenant_a, xor_model), {"name": "x"}, format="json").status_code == (
        404
    )
    assert other.delete(f"{_keys_url(tenant_a, xor_model)}{body['id']}/").status_code == 404
    assert db_snapshot() == before
