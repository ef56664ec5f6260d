"""Failed logins: who the client is (behind proxies), the per-address throttle, and what a
locked-out or throttled client sees (django-axes calls lockout_response).

django-axes locks an account after AXES_FAILURE_LIMIT failures (settings: per account and per
account and address), never a whole address: a school behind one NAT address must not be locked
out by one learner's typos. An address is throttled instead: after LOGIN_FAILURES_PER_ADDRESS
failures in LOGIN_ADDRESS_WINDOW, every login from it answers 429 until the window ends, before
any password is checked, so the throttle records nothing against the accounts tried.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from redis.exceptions import RedisError

from apps.core.api.errors import error_response

log = logging.getLogger(__name__)
LOCKOUT_MESSAGE = gettext_noop("Too many failed login attempts. Try again in 15 minutes.")


def client_address(request) -> str:
    """The client's address. With TRUSTED_PROXY_COUNT = 0 (the default) the connecting address;
    with N proxies in front, each appending the address it saw to X-Forwarded-For, the entry N
    from the right (what the nearest trusted proxy saw): what a client writes there itself is
    to the left and ignored. The same rule as DRF's throttles with NUM_PROXIES."""
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(count, len(hops))] if hops else remote


def _address_key(request) -> str:
    return f"throttle_login_address:{client_address(request)}"


def address_throttled(request) -> bool:
    """Whether logins from this request's address are refused for now. With the cache (Redis)
    down, no: logins go on, and django-axes still locks accounts (in the database)."""
    try:
        failures = cache.get(_address_key(request)) or 0
    except RedisError:
        log.warning("login throttle unavailable (cache down)", exc_info=True)
        return False
    return failures >= settings.LOGIN_FAILURES_PER_ADDRESS


def address_failure_record(sender, credentials=None, request=None, **kwargs) -> None:
    """Counts a failed login against its address (a user_login_failed receiver): a fixed window
    that starts with the address's first failure."""
    if request is None:
        return
    key = _address_key(request)
    window = int(settings.LOGIN_ADDRESS_WINDOW.total_seconds())
    try:
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: this failure opens a new window
            cache.add(key, 1, timeout=window)
    except RedisError:
        log.warning("login failure not counted for its address (cache down)", exc_info=True)


def throttled_message() -> str:
    minutes = int(settings.LOGIN_ADDRESS_WINDOW.total_seconds() // 60)
    return _("Too many failed logins from your network. Try again in %(minutes)d minutes.") % {
        "minutes": minutes
    }


def throttled_response(request):
    """What a client at a throttled address gets, on the login page or the token API."""
    return _refusal(request, throttled_message())


def lockout_response(request, response=None, credentials=None, *args, **kwargs):
    return _refusal(request, _(LOCKOUT_MESSAGE))


def _refusal(request, message: str):
    if request.path.startswith("/api/"):
        return error_response(429, "throttled", message)
    return render(request, "registration/locked_out.html", {"message": message}, status=429)
