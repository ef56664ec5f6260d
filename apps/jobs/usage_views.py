"""The tenant administrators' usage page: the quota and its balance, this period's GPU time
by course, by learner and per day (a chart), the jobs in flight, each with a cancel button, and
the model storage used and today's predictions.
Here rather than in the quotas app because the jobs in flight are the jobs app's, and the quotas
app sits below it.

TenantMiddleware has already checked membership (404 for outsiders); other roles get 404."""

from django.core.paginator import Paginator
from django.shortcuts import render

from apps.jobs.selectors import job_list_in_flight
from apps.quotas import selectors
from apps.tenants.models import Role
from apps.tenants.views import role_required

PAGE_SIZE = 25


@role_required(Role.ADMIN)
def usage_page(request, tenant_slug):
    quota = selectors.quota_get(tenant=request.tenant)
    usage = selectors.usage_get(quota=quota)
    context = {
        "tenant": request.tenant,
        "quota": quota,
        "balance": selectors.balance_get(quota=quota),
        "usage": usage,
        "artifacts": selectors.artifact_usage_get(tenant_id=request.tenant.id),
        "learners": Paginator(usage.by_learner, PAGE_SIZE).get_page(request.GET.get("learners")),
        "jobs": Paginator(job_list_in_flight(tenant=request.tenant), PAGE_SIZE).get_page(
            request.GET.get("jobs")
        ),
        "chart": {
            "days": [row["day"].isoformat() for row in usage.by_day],
            "used": [float(row["used"]) for row in usage.by_day],
        },
    }
    return render(request, "quotas/usage.html", context)
