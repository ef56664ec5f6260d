"""Console pages for platform administrators: tenants (create, suspend, reactivate, set the
quota), workers with their current job (cancel it), pools and queue depth. Anyone else gets 404,
as for a page they may not use."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_scopes import scope

from apps.console.forms import QuotaForm, TenantCreateForm
from apps.console.selectors import queue_depth_get, tenant_row_list, worker_list
from apps.core.confirm import confirm_page, confirmed
from apps.core.forms import service_errors_to_form
from apps.jobs import services as job_services
from apps.jobs.selectors import job_get_any_tenant
from apps.quotas import selectors as quota_selectors
from apps.quotas import services as quota_services
from apps.tenants import services as tenant_services
from apps.tenants.models import Role, Tenant


def platform_admin_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@platform_admin_required
def console_home(request):
    context = {
        "tenants": tenant_row_list(page=request.GET.get("page")),
        "workers": worker_list(),
        "depth": queue_depth_get(),
    }
    return render(request, "console/home.html", context)


def _tenant_set_active(request, slug: str, is_active: bool):
    tenant = get_object_or_404(Tenant, slug=slug)
    tenant_services.tenant_update(actor=request.user, tenant=tenant, is_active=is_active)
    messages.success(request, f"{tenant.name} is {'active' if is_active else 'suspended'}.")
    return redirect("console")


@require_POST
@platform_admin_required
def tenant_suspend(request, slug):
    if not confirmed(request):
        tenant = get_object_or_404(Tenant, slug=slug)
        return confirm_page(
            request,
            title=_("Suspend %(name)s") % {"name": tenant.name},
            question=_("Suspend %(name)s?") % {"name": tenant.name},
            consequence=_(
                "Its members are refused on its pages and API until it is reactivated; the "
                "change is recorded in the audit log."
            ),
            submit=_("Yes, suspend %(name)s") % {"name": tenant.name},
            back=reverse("console"),
        )
    return _tenant_set_active(request, slug, False)


@require_POST
@platform_admin_required
def tenant_reactivate(request, slug):
    return _tenant_set_active(request, slug, True)


@require_POST
@platform_admin_required
def job_cancel(request, job_id):
    job = job_get_any_tenant(job_id=job_id)
    if job is None:
        raise Http404
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Cancel the job"),
            question=_("Cancel job %(id)s of %(tenant)s?") % {"id": job.id, "tenant": job.tenant},
            consequence=_("Training stops and cannot be resumed; the learner sees it cancelled."),
            submit=_("Yes, cancel the job"),
            back=reverse("console"),
        )
    with scope(tenant=job.tenant):
        try:
            job_services.job_cancel(job=job, by=request.user)
        except job_services.Conflict as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Cancel requested for job {job.id}.")
    return redirect("console")


@platform_admin_required
def tenant_create(request):
    form = TenantCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invited = ""
            with transaction.atomic():  # the tenant and its invitation, or neither
                tenant = tenant_services.tenant_create(
                    actor=request.user, slug=data["slug"], name=data["name"]
                )
                if data["admin_email"]:
                    with scope(tenant=tenant):
                        issued = tenant_services.invitation_create(
                            tenant=tenant,
                            email=data["admin_email"],
                            role=Role.ADMIN,
                            invited_by=request.user,
                            base_url=request.build_absolute_uri("/"),
                        )
                    invited = f"; invitation sent to {issued.invitation.email}"
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, f"{tenant.name} is created{invited}.")
            return redirect("console")
    # A form with errors comes back as a page (200, as Django's own form views answer).
    return render(request, "console/tenant_create.html", {"form": form})


@platform_admin_required
def quota_edit(request, slug):
    tenant = get_object_or_404(Tenant, slug=slug)
    with scope(tenant=tenant):
        quota = quota_selectors.quota_get(tenant=tenant)
        initial = {name: getattr(quota, name) for name in quota_services.QUOTA_FIELDS}
        form = QuotaForm(request.POST or None, quota_initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                quota_services.quota_set(tenant=tenant, actor=request.user, **form.quota_values())
            except ValidationError as exc:
                service_errors_to_form(form, exc)
            else:
                messages.success(request, f"The quota of {tenant.name} is saved.")
                return redirect("console")
        context = {
            "tenant": tenant,
            "form": form,
            "balance": quota_selectors.balance_get(quota=quota),
            "artifacts": quota_selectors.artifact_usage_get(tenant_id=tenant.id),
        }
    return render(request, "console/quota_edit.html", context)
