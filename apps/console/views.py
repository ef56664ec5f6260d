"""Console pages for platform administrators: tenants (suspend, reactivate), workers with their
current job (cancel it), and queue depth. Anyone else gets 404, as for a page they may not use."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_scopes import scope

from apps.console.selectors import queue_depth, worker_list
from apps.jobs import services as job_services
from apps.jobs.selectors import job_get_any_tenant
from apps.tenants import services as tenant_services
from apps.tenants.models import Tenant


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
        "tenants": Tenant.objects.order_by("name"),
        "workers": worker_list(),
        "depth": queue_depth(),
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
    with scope(tenant=job.tenant):
        try:
            job_services.job_cancel(job=job, by=request.user)
        except job_services.Conflict as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Cancel requested for job {job.id}.")
    return redirect("console")
