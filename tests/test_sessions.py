"""Session security: a new id at login, logout ends it, and cookie flags."""

import json
import os
import subprocess
import sys

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from tests.conftest import ROOT
from tests.factories import PASSWORD


def _login(client, email, password=PASSWORD):
    return client.post("/accounts/login/", {"username": email, "password": password})


@pytest.mark.django_db
def test_the_session_id_changes_at_login(tenant_a):
    client = Client()
    session = client.session
    session["visited"] = True
    session.save()
    before = client.cookies["sessionid"].value
    response = _login(client, tenant_a.learner.user.email)
    assert response.status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert Session.objects.filter(session_key=after).exists()


@pytest.mark.django_db
def test_logout_invalidates_the_session(tenant_a):
    client = Client()
    _login(client, tenant_a.learner.user.email)
    key = client.cookies["sessionid"].value
    assert client.get(f"/t/{tenant_a.tenant.slug}/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["sessionid"] = key
    response = replay.get(f"/t/{tenant_a.tenant.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_wrong_password_shows_an_error_and_logs_nobody_in(tenant_a):
    client = Client()
    response = _login(client, tenant_a.learner.user.email, "wrong password")
    assert response.status_code == 200
    assert b"Wrong email or password." in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_cookies_are_httponly_and_samesite(tenant_a):
    client = Client()
    client.get("/accounts/login/")
    response = _login(client, tenant_a.learner.user.email)
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["httponly"] is True
    assert session_cookie["samesite"] == "Lax"
    csrf_cookie = client.cookies["csrftoken"]
    assert csrf_cookie["httponly"] is True
    assert csrf_cookie["samesite"] == "Lax"


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "production-like-secret-" + "q7Xz9" * 12,
    "ALLOWED_HOSTS": "aula.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/aula",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "EMAIL_URL": "smtp://mail.example.org:587",
}


def _production_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HTTPS", "DJANGO_SETTINGS_MODULE")}
    return {**env, **PRODUCTION_ENV}


def test_production_settings_make_cookies_secure():
    script = (
        "import django, json; from django.conf import settings; django.setup(); "
        "print(json.dumps({k: getattr(settings, k) for k in ("
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
        "'CSRF_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**_production_env(), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
    }


def test_check_deploy_prints_no_warning():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNING" not in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in _production_env().items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr
