"""Resolves the tenant named in the URL (/t/<slug>/…, /api/v1/t/<slug>/…) and opens its scope.

Pages are checked here (session auth is known now); API views are checked by the TenantMember
permission, after DRF has authenticated the token. The Django admin, for platform
administrators only, runs with scopes disabled so it can list every tenant's rows.
"""

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import Resolver404, resolve
from django_scopes import scope, scopes_disabled

from apps.core.errors import page_not_found, permission_denied
from apps.tenants.access import TenantNotFound, TenantSuspended, tenant_access
from apps.tenants.selectors import tenant_get


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.tenant_access = None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)

        if match.app_name == "admin":
            if request.user.is_staff:  # the admin's own login page handles everyone else
                with scopes_disabled():
                    return self.get_response(request)
            return self.get_response(request)

        slug = match.kwargs.get("tenant_slug")
        if slug is None:
            return self.get_response(request)

        tenant = tenant_get(slug=slug)
        if tenant is None:
            return page_not_found(request, Http404())
        request.tenant = tenant
        if not request.path_info.startswith("/api/"):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                request.tenant_access = tenant_access(user=request.user, tenant=tenant)
            except TenantNotFound:
                return page_not_found(request, Http404())
            except TenantSuspended:
                return permission_denied(request, Exception("This tenant is suspended."))
        with scope(tenant=tenant):
            return self.get_response(request)
