"""Writes for accounts: API tokens, and the periodic purge of expired credentials."""

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.sessions.models import Session
from django.utils import timezone
from knox.models import AuthToken


class LoginFailed(Exception):
    """Wrong email or password, or an inactive account (one message for all: no enumeration)."""


def token_create(*, request, email: str, password: str) -> tuple[AuthToken, str]:
    """Check the credentials (counted by django-axes) and issue an API token (stored hashed)."""
    user = authenticate(request, username=email.strip().lower(), password=password)
    if user is None or not user.is_active:
        raise LoginFailed("Wrong email or password.")
    return AuthToken.objects.create(user=user)


def token_revoke(*, token: AuthToken) -> None:
    token.delete()


def credentials_purge() -> dict:
    now = timezone.now()
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    tokens, _ = AuthToken.objects.filter(expiry__lt=now).delete()
    attempts, _ = AccessAttempt.objects.filter(
        attempt_time__lt=now - settings.AXES_COOLOFF_TIME
    ).delete()
    return {"sessions": sessions, "tokens": tokens, "login_attempts": attempts}


def user_preferences_set(*, user, time_zone: str) -> None:
    """Save the user's time zone (an IANA name, or empty for UTC); a bad name raises
    ValidationError on `time_zone` and nothing is saved."""
    user.time_zone = time_zone
    user.full_clean(exclude=["password"])
    user.save(update_fields=["time_zone"])
