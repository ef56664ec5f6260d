"""The administrators' tutor page: which backend answers the tenant's learners, and its usage."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from apps.core.forms import service_errors_to_form
from apps.learning import services
from apps.learning.forms import TutorSettingsForm
from apps.learning.tutoring import tokens_used_this_month
from apps.tenants.models import Role
from apps.tenants.views import role_required


@role_required(Role.ADMIN)
def tutor_settings_page(request, tenant_slug):
    row = services.tutor_settings_of(request.tenant)
    if request.method == "POST":
        form = TutorSettingsForm(request.POST)
        if form.is_valid():
            values = {
                k: form.cleaned_data[k] for k in ("endpoint_url", "model", "tokens_per_month")
            }
            try:
                services.tutor_settings_set(
                    tenant=request.tenant, actor=request.user, api_key=form.api_key_change(),
                    **values,
                )  # fmt: skip
            except ValidationError as exc:
                service_errors_to_form(form, exc)
            else:
                messages.success(request, "The tutor's settings are saved.")
                return redirect("tutor-settings", tenant_slug=tenant_slug)
    else:
        form = TutorSettingsForm(
            initial={"endpoint_url": row.endpoint_url, "model": row.model,
                     "tokens_per_month": row.tokens_per_month}
        )  # fmt: skip
    context = {
        "tenant": request.tenant,
        "form": form,
        "settings_row": row,
        "tokens_used": tokens_used_this_month(request.tenant.pk),
    }
    return render(request, "learning/tutor_settings.html", context)
