"""Request-level limits that apply before any view runs, and the user's time zone."""

import re
import zoneinfo

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from apps.core.api.errors import error_response


class RequestBodyLimitMiddleware:
    """Answers 413 for a body over REQUEST_BODY_MAX_BYTES, or over the limit of its path in
    REQUEST_BODY_LIMITS ({path regex: bytes}, the first that matches: the prediction API's).

    Django checks the limit only when a view reads request.body; DRF's parsers read the stream
    and skip that check, so it is enforced here, once, for pages and API alike. Django reads a
    body only up to its declared Content-Length (a chunked body without one reads as empty), so
    the declared length is the one to check.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def limit_for(path: str) -> int:
        for pattern, limit in settings.REQUEST_BODY_LIMITS.items():
            if re.match(pattern, path):
                return limit
        return settings.REQUEST_BODY_MAX_BYTES

    def __call__(self, request):
        limit = self.limit_for(request.path)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            message = f"The request body is larger than {limit // 1024} KiB."
            if request.path.startswith("/api/"):
                return error_response(413, "request_too_large", message)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


class UserTimeZoneMiddleware:
    """Pages show dates, and forms read datetime-local inputs, in the signed-in user's time
    zone (User.time_zone; UTC until they choose one); the API stays in UTC, whoever calls it.
    After AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = getattr(getattr(request, "user", None), "time_zone", "")
        zone = None
        if name and not request.path.startswith("/api/"):  # the API speaks UTC to everyone
            try:
                zone = zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone = None  # a zone the system no longer knows: UTC, as before choosing
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
