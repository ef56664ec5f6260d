"""Django's error handlers: JSON in the API's error shape under /api/, pages elsewhere."""

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from apps.core.api.errors import error_response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _page_or_json(request, status_code: int, code: str, message: str):
    if _is_api(request):
        return error_response(status_code, code, message)
    return render(
        request, "error.html", {"status": status_code, "message": message}, status=status_code
    )


def bad_request(request, exception=None):
    return _page_or_json(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You may not do this."
    return _page_or_json(request, 403, "permission_denied", message)


def page_not_found(request, exception=None):
    return _page_or_json(request, 404, "not_found", "Not found.")


def server_error(request):
    if _is_api(request):
        return error_response(500, "server_error", "Something went wrong on our side.")
    # A standalone page with no context processors or base template: the failure may be there.
    return HttpResponseServerError(loader.get_template("500.html").render())
