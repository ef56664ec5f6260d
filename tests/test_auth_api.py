"""API tokens (stored hashed); the lockout after 20 failed logins for an account (never for a
whole address); the per-address throttle; the client's address behind trusted proxies."""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.conftest import free_port
from tests.factories import PASSWORD
from tests.snapshots import db_snapshot

LOCKED = "Too many failed login attempts. Try again in 15 minutes."


def _token(email, password, ip="10.1.0.1"):
    return APIClient().post(
        "/api/v1/auth/token/",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


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
def test_the_failures_for_one_account_do_not_lock_out_the_others_at_the_same_address(
    tenant_a, settings
):
    """A school behind one NAT address: one learner's failures lock that learner only. (At a
    limit of 3: each failure costs a password hash, and the 20 are tested above.)"""
    settings.AXES_FAILURE_LIMIT = 3
    nat = "10.3.0.1"
    email = tenant_a.learner.user.email
    statuses = [_token(email, "wrong", ip=nat).status_code for _ in range(3)]
    assert statuses == [401] * 2 + [429]
    assert _token(email, PASSWORD, ip=nat).status_code == 429
    assert _token(email, PASSWORD, ip="10.3.0.2").status_code == 429  # the account is locked
    assert AuthToken.objects.count() == 0
    teacher = _token(tenant_a.teacher.user.email, PASSWORD, ip=nat)
    assert teacher.status_code == 201
    assert list(AuthToken.objects.values_list("user__email", flat=True)) == [
        tenant_a.teacher.user.email
    ]


THROTTLED = "Too many failed logins from your network. Try again in 15 minutes."


@pytest.mark.django_db
def test_the_address_throttle_answers_429_without_locking_the_accounts_it_refuses(
    tenant_a, settings
):
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    spray = "10.5.0.1"
    statuses = [_token(f"guess{i}@example.org", "wrong", ip=spray).status_code for i in range(5)]
    assert statuses == [401] * 5
    teacher = tenant_a.teacher.user.email
    before = db_snapshot()
    refused = _token(teacher, PASSWORD, ip=spray)
    assert refused.status_code == 429
    assert refused.json()["error"] == {"code": "throttled", "message": THROTTLED, "fields": {}}
    page = Client(REMOTE_ADDR=spray).post(
        "/accounts/login/", {"username": teacher, "password": PASSWORD}
    )
    assert page.status_code == 429
    assert THROTTLED.encode() in page.content
    assert db_snapshot() == before  # no token, no attempt recorded against the teacher
    assert not AccessAttempt.objects.filter(username=teacher).exists()
    # The teacher is not locked: from another address the same login works.
    assert _token(teacher, PASSWORD, ip="10.5.0.2").status_code == 201


@pytest.mark.django_db
def test_the_forwarded_address_counts_only_behind_configured_proxies(tenant_a, settings):
    email = tenant_a.learner.user.email

    def fail(**headers):
        APIClient().post(
            "/api/v1/auth/token/",
            {"email": email, "password": "wrong"},
            format="json",
            REMOTE_ADDR="10.6.0.1",
            **headers,
        )
        return sorted(AccessAttempt.objects.values_list("ip_address", flat=True))

    # Not configured: the header is the client's own words and is ignored.
    assert fail(HTTP_X_FORWARDED_FOR="10.7.7.7") == ["10.6.0.1"]
    # One proxy in front: what it saw (the right-most entry), not what the client wrote before.
    settings.TRUSTED_PROXY_COUNT = 1
    assert fail(HTTP_X_FORWARDED_FOR="10.7.7.7, 10.8.0.9") == ["10.6.0.1", "10.8.0.9"]
    settings.TRUSTED_PROXY_COUNT = 2
    assert fail(HTTP_X_FORWARDED_FOR="10.7.7.7, 10.9.0.1, 10.8.0.9") == [
        "10.6.0.1",
        "10.8.0.9",
        "10.9.0.1",
    ]


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


@pytest.mark.django_db
def test_the_login_page_lock_of_one_account_leaves_the_others_at_that_address(tenant_a, settings):
    settings.AXES_FAILURE_LIMIT = 3  # the 20 of the setting are tested above
    nat = "10.4.1.1"
    locked = Client(REMOTE_ADDR=nat)
    for _ in range(3):
        response = locked.post(
            "/accounts/login/", {"username": tenant_a.learner.user.email, "password": "x"}
        )
    assert response.status_code == 429
    other = Client(REMOTE_ADDR=nat)
    response = other.post(
        "/accounts/login/", {"username": tenant_a.teacher.user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert other.session["_auth_user_id"] == str(tenant_a.teacher.user.pk)


@pytest.mark.django_db
def test_with_the_cache_down_the_login_page_still_works_and_axes_still_locks(tenant_a, settings):
    """The per-address throttle counts in Redis; without it logins go on (the lockout of an
    account is in the database)."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    client = Client(REMOTE_ADDR="10.10.0.1")
    client.raise_request_exception = False
    email = tenant_a.teacher.user.email
    wrong = client.post("/accounts/login/", {"username": email, "password": "wrong"})
    assert wrong.status_code == 200
    assert AccessAttempt.objects.get(username=email).failures_since_start == 1
    right = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert right.status_code == 302
    assert client.session["_auth_user_id"] == str(tenant_a.teacher.user.pk)
