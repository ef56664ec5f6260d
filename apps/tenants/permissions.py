"""DRF permissions. TenantMember is a default for every API view: on a /t/<slug>/ route it lets
in members only (others get 404) and records their role for the role permissions below."""

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from apps.tenants.access import TenantNotFound, TenantSuspended, tenant_access
from apps.tenants.models import Role


class TenantMember(BasePermission):
    def has_permission(self, request, view):
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return True  # not a tenant route
        try:
            request.tenant_access = tenant_access(user=request.user, tenant=tenant)
        except TenantNotFound as exc:
            raise exceptions.NotFound() from exc
        except TenantSuspended as exc:
            raise exceptions.PermissionDenied("This tenant is suspended.") from exc
        return True


class _TenantRole(BasePermission):
    role: Role

    def has_permission(self, request, view):
        access = getattr(request, "tenant_access", None)
        if access is None or not access.allows(self.role):
            self.message = f"This needs the {self.role.label.lower()} role in this tenant."
            return False
        return True


class TenantTeacher(_TenantRole):
    role = Role.TEACHER


class TenantAdmin(_TenantRole):
    role = Role.ADMIN


class PlatformAdmin(BasePermission):
    message = "This needs a platform administrator."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
