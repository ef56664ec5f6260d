"""The prediction API's fast path (apps/serving/fastpath.py) over real HTTP: uvicorn on
config.asgi, as production runs it, with the real inference pool behind it, on committed test
data. A caller's first prediction is Django's; the next ones are the fast path's (its answers
carry `Server-Timing: predict-fast`), with the same answer and the same count. Every change to
who may predict is seen by the very next request, and everything the view refuses is still
refused by the view, with its own error, nothing counted."""

import json
import threading

import httpx
import numpy as np
import pytest
from django.conf import settings
from django_scopes import scopes_disabled
from knox.models import AuthToken

from apps.quotas.models import PredictionUsage, TenantQuota
from apps.serving.models import ModelApiKey
from apps.tenants.models import Role
from apps.trained_models.services import trained_model_delete
from runtime.artifacts.session import onnx_session
from tests.conftest import api_client_for, stop_process, uvicorn_start
from tests.serving.conftest import mlp_onnx, random_inputs, store_model

pytestmark = pytest.mark.django_db(transaction=True)

KEY_RATE = 3  # per minute, per key, in this module's server


@pytest.fixture(scope="module")
def web(pool_url, tmp_path_factory, django_db_setup):
    process, url = uvicorn_start(
        tmp_path_factory,
        INFERENCE_URL=pool_url,
        SECRET_KEY=settings.SECRET_KEY,
        THROTTLE_MODEL_KEY=f"{KEY_RATE}/min",
    )
    yield url
    stop_process(process)


@pytest.fixture
def xor_onnx() -> bytes:
    return mlp_onnx(2, 2)


@pytest.fixture
def xor_model(tenant_a, xor_onnx):
    return store_model(tenant_a, xor_onnx)


def _token(user) -> str:
    _, raw = AuthToken.objects.create(user=user)
    return f"Token {raw}"


def _path(world, model) -> str:
    return f"/api/v1/t/{world.tenant.slug}/models/{model.id}/predict"


def _post(web, path, authorization, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{web}{path}",
        content=content,
        headers={"authorization": authorization, "content-type": "application/json"},
        timeout=20,
    )


def _fast(response: httpx.Response) -> bool:
    return response.headers.get("server-timing", "").startswith("predict-fast;dur=")


def _usage(tenant) -> list[tuple[int, int]]:
    with scopes_disabled():
        return list(
            PredictionUsage.objects.filter(tenant=tenant).values_list("requests", "samples")
        )


def _headers(response: httpx.Response) -> dict:
    return {
        name: value
        for name, value in response.headers.items()
        if name not in {"date", "content-length", "server-timing"}
    }


def _granted(web, path, authorization, body=None) -> None:
    """The caller's first prediction (Django's) and second (the fast path's), both answered."""
    body = body or {"inputs": [[1.0, -1.0]]}
    first = _post(web, path, authorization, body)
    assert first.status_code == 200, first.text
    assert not _fast(first)
    second = _post(web, path, authorization, body)
    assert second.status_code == 200, second.text
    assert _fast(second)


def test_the_second_prediction_is_the_fast_paths_with_the_same_answer(
    web, tenant_a, xor_model, xor_onnx
):
    authorization = _token(tenant_a.learner.user)
    inputs = random_inputs(7, 2)
    first = _post(web, _path(tenant_a, xor_model), authorization, {"inputs": inputs.tolist()})
    second = _post(web, _path(tenant_a, xor_model), authorization, {"inputs": inputs.tolist()})
    assert (first.status_code, _fast(first)) == (200, False)
    assert (second.status_code, _fast(second)) == (200, True)
    assert second.json() == first.json()
    assert _headers(second) == _headers(first)
    assert _headers(first)["x-content-type-options"] == "nosniff"
    expected = onnx_session(xor_onnx).run(None, {"input": inputs})[0]
    got = np.array([p["probabilities"] for p in second.json()["predictions"]], np.float32)
    np.testing.assert_array_equal(got, expected)
    assert _usage(tenant_a.tenant) == [(2, 14)]


def test_a_revoked_key_is_refused_by_the_next_request(web, tenant_a, xor_model):
    owner = api_client_for(tenant_a.learner.user)
    keys = f"/api/v1/t/{tenant_a.tenant.slug}/models/{xor_model.id}/keys/"
    made = owner.post(keys, {"name": "app"}, format="json").json()
    authorization = f"Bearer {made['key']}"
    _granted(web, _path(tenant_a, xor_model), authorization)
    with scopes_disabled():
        used_at = ModelApiKey.objects.get(id=made["id"]).last_used_at
    assert owner.delete(f"{keys}{made['id']}/").status_code == 204

    response = _post(web, _path(tenant_a, xor_model), authorization, {"inputs": [[1, -1]]})
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("This API key was revoked on ")
    assert _usage(tenant_a.tenant) == [(2, 2)]
    with scopes_disabled():
        assert ModelApiKey.objects.get(id=made["id"]).last_used_at == used_at


def test_a_key_is_marked_used_and_rate_limited_on_the_fast_path(web, tenant_a, xor_model):
    owner = api_client_for(tenant_a.learner.user)
    keys = f"/api/v1/t/{tenant_a.tenant.slug}/models/{xor_model.id}/keys/"
    made = owner.post(keys, {"name": "app"}, format="json").json()
    authorization = f"Bearer {made['key']}"
    path = _path(tenant_a, xor_model)
    _granted(web, path, authorization)
    with scopes_disabled():
        ModelApiKey.objects.filter(id=made["id"]).update(last_used_at=None)  # no signal: kept
    third = _post(web, path, authorization, {"inputs": [[1, -1]]})
    assert (third.status_code, _fast(third)) == (200, True)
    with scopes_disabled():
        assert ModelApiKey.objects.get(id=made["id"]).last_used_at is not None

    over = _post(web, path, authorization, {"inputs": [[1, -1]]})  # the 4th within the minute
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "throttled"
    assert 0 < int(over.headers["retry-after"]) <= 60
    assert _usage(tenant_a.tenant) == [(KEY_RATE, KEY_RATE)]


def test_a_deleted_token_is_refused_by_the_next_request(web, tenant_a, xor_model):
    authorization = _token(tenant_a.learner.user)
    _granted(web, _path(tenant_a, xor_model), authorization)
    AuthToken.objects.filter(user=tenant_a.learner.user).delete()  # as knox's logout does

    response = _post(web, _path(tenant_a, xor_model), authorization, {"inputs": [[1, -1]]})
    assert response.status_code == 401
    assert _usage(tenant_a.tenant) == [(2, 2)]


def _teacher_leaves_the_course(world, model):
    world.course.teachers.remove(world.teacher.user)


def _teacher_becomes_a_learner(world, model):
    with scopes_disabled():
        world.teacher.role = Role.LEARNER
        world.teacher.save()


def _the_model_is_deleted(world, model):
    trained_model_delete(model=model)


def _the_tenant_is_suspended(world, model):
    world.tenant.is_active = False
    world.tenant.save()


def _the_teacher_is_deactivated(world, model):
    world.teacher.user.is_active = False
    world.teacher.user.save()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (_teacher_leaves_the_course, 404),
        (_teacher_becomes_a_learner, 404),
        (_the_model_is_deleted, 404),
        (_the_tenant_is_suspended, 403),
        (_the_teacher_is_deactivated, 401),
    ],
)
def test_access_lost_is_seen_by_the_next_request(web, tenant_a, xor_model, change, status):
    authorization = _token(tenant_a.teacher.user)
    _granted(web, _path(tenant_a, xor_model), authorization)
    change(tenant_a, xor_model)

    response = _post(web, _path(tenant_a, xor_model), authorization, {"inputs": [[1, -1]]})
    assert response.status_code == status, response.text
    assert not _fast(response)
    assert _usage(tenant_a.tenant) == [(2, 2)]


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": [[NaN, 1.0]]}',
        b'{"inputs": [[1.0, 2.0, 3.0]]}',
        b'{"inputs": [[1.0, 2.0]], "extra": 1}',
        b'{"inputs": [[1.0, 2.0]], "images": ["aGVsbG8="]}',
        b'{"inputs": []}',
        b'{"inputs": [[1e400, 0]]}',
        b'{"inputs": [[1234567890123456789012345678901234567890123, 0]]}',
        b'{"inputs": ' + json.dumps([[0.0, 0.0]] * 257).encode() + b"}",
        b"[1, 2]",
        b"{not json",
    ],
)
def test_input_the_view_refuses_gets_the_views_error(web, tenant_a, xor_model, body):
    authorization = _token(tenant_a.learner.user)
    path = _path(tenant_a, xor_model)
    _granted(web, path, authorization)
    expected = api_client_for(tenant_a.learner.user).post(
        path, body, content_type="application/json"
    )
    assert 400 <= expected.status_code < 500

    response = _post(web, path, authorization, body)
    assert response.status_code == expected.status_code
    assert response.json() == expected.json()
    assert not _fast(response)
    assert _usage(tenant_a.tenant) == [(2, 2)]


def test_over_the_allowance_nothing_is_counted_and_a_new_quota_applies_at_once(
    web, tenant_a, xor_model
):
    with scopes_disabled():
        TenantQuota.objects.filter(tenant=tenant_a.tenant).update(predictions_per_day=3)
    authorization = _token(tenant_a.learner.user)
    path = _path(tenant_a, xor_model)
    _granted(web, path, authorization)

    over = _post(web, path, authorization, {"inputs": [[1, -1], [1, 1]]})
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "prediction_quota_exceeded"
    assert _usage(tenant_a.tenant) == [(2, 2)]

    with scopes_disabled():
        quota = TenantQuota.objects.get(tenant=tenant_a.tenant)
        quota.predictions_per_day = 10
        quota.save()
    for fast in (False, True):
        response = _post(web, path, authorization, {"inputs": [[1, -1], [1, 1]]})
        assert (response.status_code, _fast(response)) == (200, fast)
    assert _usage(tenant_a.tenant) == [(4, 6)]


def test_another_tenants_url_gets_no_grant(web, tenant_a, tenant_b, xor_model):
    authorization = _token(tenant_a.learner.user)
    _granted(web, _path(tenant_a, xor_model), authorization)

    response = _post(web, _path(tenant_b, xor_model), authorization, {"inputs": [[1, -1]]})
    assert response.status_code in (403, 404)
    assert not _fast(response)
    assert _usage(tenant_a.tenant) == [(2, 2)]
    assert _usage(tenant_b.tenant) == []


def test_concurrent_predictions_are_each_answered_and_counted(web, tenant_a, xor_model):
    authorization = _token(tenant_a.learner.user)
    path = _path(tenant_a, xor_model)
    _granted(web, path, authorization)
    answers: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def client():
        with httpx.Client(base_url=web, timeout=20) as http:
            for _ in range(5):
                response = http.post(
                    path,
                    json={"inputs": [[1, -1], [0.5, 0.5]]},
                    headers={"authorization": authorization},
                )
                with lock:
                    answers.append((response.status_code, _fast(response)))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [(200, True)] * 80
    assert _usage(tenant_a.tenant) == [(82, 162)]
