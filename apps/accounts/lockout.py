"""What a locked-out client sees after 20 failed logins (django-axes calls this)."""

from django.shortcuts import render

from apps.core.api.errors import error_response

LOCKOUT_MESSAGE = "Too many failed login attempts. Try again in 15 minutes."


def lockout_response(request, response=None, credentials=None, *args, **kwargs):
    if request.path.startswith("/api/"):
        return error_response(429, "throttled", LOCKOUT_MESSAGE)
    return render(request, "registration/locked_out.html", {"message": LOCKOUT_MESSAGE}, status=429)
