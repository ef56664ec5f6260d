"""Pages' forms and the services behind them."""

from django import forms
from django.core.exceptions import ValidationError


def service_errors_to_form(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: each error beside its field where the form
    has that field, the rest (and errors not about a field) as the form's own. A form whose
    fields are named otherwise than the service's maps them in `service_field_names`."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    names = getattr(form, "service_field_names", {})
    for field, errors in exc.message_dict.items():
        field = names.get(field, field)
        form.add_error(field if field in form.fields else None, errors)
