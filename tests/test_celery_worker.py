"""A real Celery worker process runs the periodic credentials purge against the test database."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from knox.models import AuthToken

from apps.accounts.tasks import credentials_purge
from config.celery import app


@pytest.mark.django_db(transaction=True)
def test_the_worker_purges_expired_sessions_and_tokens(celery_worker_process, tenant_a):
    user = tenant_a.learner.user
    live_token, _ = AuthToken.objects.create(user=user)
    _old_token, _ = AuthToken.objects.create(user=user, expiry=timedelta(seconds=-1))
    live, old = SessionStore(), SessionStore()
    live.create()
    old.create()
    Session.objects.filter(session_key=old.session_key).update(
        expire_date=timezone.now() - timedelta(minutes=1)
    )

    result = credentials_purge.apply_async(queue="default").get(timeout=60)

    assert result == {"sessions": 1, "tokens": 1, "login_attempts": 0}
    assert list(AuthToken.objects.values_list("digest", flat=True)) == [live_token.digest]
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def test_the_beat_schedule_names_a_registered_task():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry
