"""The prediction API end to end: this process is the web side, the inference pool runs in its
own process on the committed test data. Answers equal onnxruntime's in-process; who may call;
the pool down; a model failing at run time; the tenant's daily allowance."""

import numpy as np
import pytest
from django_scopes import scopes_disabled

from apps.quotas.models import PredictionUsage, TenantQuota
from apps.serving.inference.client import inference_client_reset
from runtime.artifacts.session import onnx_session
from tests.conftest import api_client_for, free_port
from tests.factories import MembershipFactory
from tests.serving.conftest import (
    mlp_onnx,
    pool_stats,
    random_inputs,
    reshape_fails_onnx,
    store_model,
)
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def _url(world, model) -> str:
    return f"/api/v1/t/{world.tenant.slug}/models/{model.id}/predict"


def _usage(tenant) -> list[tuple[int, int]]:
    with scopes_disabled():
        return list(
            PredictionUsage.objects.filter(tenant=tenant).values_list("requests", "samples")
        )


@pytest.fixture
def xor_onnx() -> bytes:
    return mlp_onnx(2, 2)


@pytest.fixture
def xor_model(tenant_a, xor_onnx):
    return store_model(tenant_a, xor_onnx)


def test_predict_answers_onnxruntimes_probabilities(pool, tenant_a, xor_model, xor_onnx):
    inputs = random_inputs(5, 2)
    response = api_client_for(tenant_a.learner.user).post(
        _url(tenant_a, xor_model), {"inputs": inputs.tolist()}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    expected = onnx_session(xor_onnx).run(None, {"input": inputs})[0]
    got = np.array([p["probabilities"] for p in body["predictions"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert body["model"] == str(xor_model.id)
    assert body["class_names"] == ["same sign", "opposite signs"]
    names = body["class_names"]
    assert [p["class_index"] for p in body["predictions"]] == expected.argmax(1).tolist()
    assert [p["label"] for p in body["predictions"]] == [names[i] for i in expected.argmax(1)]
    assert _usage(tenant_a.tenant) == [(1, 5)]


@pytest.mark.parametrize("role", ["learner", "teacher", "admin"])
def test_the_owner_teachers_and_admins_may_predict(pool, tenant_a, xor_model, role):
    user = getattr(tenant_a, role).user
    response = api_client_for(user).post(
        _url(tenant_a, xor_model), {"inputs": [[0.5, -0.5]]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["predictions"]) == 1


def _refused_without_a_trace(client, url, status, code, tenant):
    before = db_snapshot()
    response = client.post(url, {"inputs": [[0.5, -0.5]]}, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert db_snapshot() == before
    assert _usage(tenant) == []
    return response


def test_another_learner_gets_404(pool, tenant_a, xor_model):
    other = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    _refused_without_a_trace(
        api_client_for(other), _url(tenant_a, xor_model), 404, "not_found", tenant_a.tenant
    )


def test_a_teacher_of_another_course_gets_404(pool, tenant_a, xor_model):
    other = MembershipFactory(tenant=tenant_a.tenant, role="teacher").user
    _refused_without_a_trace(
        api_client_for(other), _url(tenant_a, xor_model), 404, "not_found", tenant_a.tenant
    )


def test_another_tenants_model_is_404_and_counts_nothing(pool, tenant_a, tenant_b, xor_model):
    client = api_client_for(tenant_b.admin.user)
    url = f"/api/v1/t/{tenant_b.tenant.slug}/models/{xor_model.id}/predict"
    _refused_without_a_trace(client, url, 404, "not_found", tenant_a.tenant)
    assert _usage(tenant_b.tenant) == []
    # Nor in the model's own tenant by someone who is not a member there.
    _refused_without_a_trace(client, _url(tenant_a, xor_model), 404, "not_found", tenant_a.tenant)


def test_anonymous_gets_401(pool, tenant_a, xor_model):
    _refused_without_a_trace(
        api_client_for(None), _url(tenant_a, xor_model), 401, "not_authenticated", tenant_a.tenant
    )


def test_the_pool_down_is_503_and_counts_nothing(tenant_a, xor_model, settings):
    settings.INFERENCE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    inference_client_reset()
    try:
        response = _refused_without_a_trace(
            api_client_for(tenant_a.learner.user),
            _url(tenant_a, xor_model),
            503,
            "inference_unavailable",
            tenant_a.tenant,
        )
    finally:
        inference_client_reset()
    assert "inference service is not answering" in response.json()["error"]["message"]


def test_a_model_failing_at_run_time_is_a_clear_error_and_the_pool_serves_on(
    pool, tenant_a, xor_model
):
    failing = store_model(tenant_a, reshape_fails_onnx(2), dataset="xor")
    client = api_client_for(tenant_a.learner.user)
    before = db_snapshot()
    response = client.post(_url(tenant_a, failing), {"inputs": [[1.0, 2.0]]}, format="json")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "model_failed"
    assert error["message"].startswith("the model failed while running: ")
    assert "Reshape" in error["message"] or "reshape" in error["message"]
    assert db_snapshot() == before
    # The pool keeps serving, that model's other batches and other models alike.
    ok = client.post(_url(tenant_a, xor_model), {"inputs": [[1.0, 2.0]]}, format="json")
    assert ok.status_code == 200, ok.content
    assert _usage(tenant_a.tenant) == [(1, 1)]


def test_over_the_daily_allowance_is_429_and_counts_nothing(pool, tenant_a, xor_model):
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=tenant_a.tenant).update(predictions_per_day=3)
    client = api_client_for(tenant_a.learner.user)
    first = client.post(_url(tenant_a, xor_model), {"inputs": [[0, 1], [1, 0]]}, format="json")
    assert first.status_code == 200, first.content
    before = db_snapshot()
    response = client.post(_url(tenant_a, xor_model), {"inputs": [[0, 1], [1, 0]]}, format="json")
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "prediction_quota_exceeded"
    assert 0 < int(response["Retry-After"]) <= 24 * 3600  # midnight UTC
    assert error["message"] == (
        "This tenant's predictions for today are used up: 2 of 3 samples, and this request "
        "has 2. The allowance starts again at midnight UTC."
    )
    assert db_snapshot() == before
    assert _usage(tenant_a.tenant) == [(1, 2)]
    # One sample still fits.
    last = client.post(_url(tenant_a, xor_model), {"inputs": [[0, 1]]}, format="json")
    assert last.status_code == 200, last.content
    assert _usage(tenant_a.tenant) == [(2, 3)]


def test_the_pool_refuses_callers_without_the_secret(pool):
    import urllib.error
    import urllib.request

    for path in ("/v1/stats", "/v1/run"):
        request = urllib.request.Request(f"{pool}{path}", data=b"x" if "run" in path else None)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
    assert set(pool_stats(pool)) == {"batcher", "cache"}
