"""API tokens (stored hashed), and the lockout after 20 failed logins per account and per IP."""

import pytest
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import PASSWORD
from tests.snapshots import db_snapshot

LOCKED = "Too many failed login attempts. Try again in 15 minutes."


def _token(email, password, ip="10.1.0.1"):
    return APIClient().post(
        "/api/v1/auth/token/", {"email": email, "password": password}, format="json",
        REMOTE_ADDR=ip,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_token_is_issued_stored_hashed_and_revocable(tenant_a):
    user = tenant_a.learner.user
    response = _token(user.email.upper(), PASSWORD)
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert body["user"]["email"] == user.email
    stored = AuthToken.objects.get(user=user)
    assert raw not in (stored.digest, stored.token_key)
    assert raw.startswith(stored.token_key)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["memberships"] == [
        {"tenant_slug": "alpha", "tenant_name": "School ALPHA", "role": "learner"}
    ]
    assert client.post("/api/v1/auth/token/revoke/").status_code == 204
    assert AuthToken.objects.filter(user=user).count() == 0
    after = client.get("/api/v1/me/")
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_wrong_credentials_answer_401_without_saying_which(tenant_a):
    for email, password in ((tenant_a.learner.user.email, "nope"), ("ghost@example.org", "x")):
        before = db_snapshot()
        response = _token(email, password)
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "authentication_failed",
            "message": "Wrong email or password.",
            "fields": {},
        }
        assert db_snapshot() == before


@pytest.mark.django_db
def test_20_failures_lock_the_account_from_any_ip(tenant_a):
    email = tenant_a.learner.user.email
    statuses = [_token(email, "wrong", ip=f"10.2.0.{i}").status_code for i in range(1, 21)]
    assert statuses == [401] * 19 + [429]
    locked = _token(email, PASSWORD, ip="10.2.1.1")
    assert locked.status_code == 429
    assert locked.json()["error"] == {"code": "throttled", "message": LOCKED, "fields": {}}
    assert AuthToken.objects.count() == 0
    # Another account is not affected.
    assert _token(tenant_a.teacher.user.email, PASSWORD, ip="10.2.1.2").status_code == 201


@pytest.mark.django_db
def test_20_failures_lock_the_ip_for_every_account(tenant_a):
    statuses = [
        _token(f"guess{i}@example.org", "wrong", ip="10.3.0.1").status_code for i in range(20)
    ]
    assert statuses == [401] * 19 + [429]
    assert _token(tenant_a.learner.user.email, PASSWORD, ip="10.3.0.1").status_code == 429
    assert _token(tenant_a.learner.user.email, PASSWORD, ip="10.3.0.2").status_code == 201


@pytest.mark.django_db
def test_the_login_page_locks_out_after_20_failures(tenant_a):
    email = tenant_a.learner.user.email
    client = Client(REMOTE_ADDR="10.4.0.1")
    for _ in range(19):
        response = client.post("/accounts/login/", {"username": email, "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/accounts/login/", {"username": email, "password": "wrong"})
    assert response.status_code == 429
    assert LOCKED.encode() in response.content
    response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
