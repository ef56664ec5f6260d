"""The API's one error shape: {"error": {"code", "message", "fields"}} for every failure."""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status_code: int, code: str, message: str, fields: dict | None = None):
    """A plain Django JsonResponse in the API's error shape (for middleware and handlers)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


def _flatten(detail) -> str | list | dict:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers in the same shape

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
        else:
            fields = {
                "non_field_errors": _flatten(detail if isinstance(detail, list) else [detail])
            }
        body = error_body("invalid", "The request has invalid fields; see error.fields.", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        if isinstance(detail, dict | list):
            body = error_body(code, str(exc.default_detail), {"detail": _flatten(detail)})
        else:
            body = error_body(getattr(detail, "code", None) or code, str(detail))
    return Response(body, status=response.status_code, headers=_copy_headers(response))


def _copy_headers(response) -> dict:
    return {
        name: response[name]
        for name in ("WWW-Authenticate", "Retry-After", "Allow")
        if response.has_header(name)
    }


def validation_error_from(exc):
    """A Django ValidationError (from a service) as DRF's, keeping the field names; errors not
    about one field ("__all__") are named non_field_errors."""
    from django.core.exceptions import NON_FIELD_ERRORS
    from rest_framework.exceptions import ValidationError

    if not hasattr(exc, "error_dict"):
        return ValidationError({"non_field_errors": exc.messages})
    return ValidationError(
        {
            ("non_field_errors" if field == NON_FIELD_ERRORS else field): messages
            for field, messages in exc.message_dict.items()
        }
    )


@contextmanager
def service_errors():
    """Inside an API view: a service's ValidationError becomes the API's 400 with field errors."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        yield
    except DjangoValidationError as exc:
        raise validation_error_from(exc) from exc
