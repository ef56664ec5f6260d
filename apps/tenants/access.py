"""The one decision of who may enter a tenant, used by pages, the API and websockets alike.

Not a member (and not a platform administrator): the tenant does not exist for you (404).
A member of a suspended tenant: 403. Platform administrators enter every tenant as admins.
"""

from dataclasses import dataclass

from apps.tenants.models import ROLE_RANK, Role, Tenant
from apps.tenants.selectors import role_get


class TenantNotFound(Exception):
    pass


class TenantSuspended(Exception):
    pass


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: Role

    def allows(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[Role(role)]


def tenant_access(*, user, tenant: Tenant) -> TenantAccess:
    role = role_get(user=user, tenant=tenant)
    if role is None:
        raise TenantNotFound
    if not tenant.is_active and not user.is_staff:
        raise TenantSuspended
    return TenantAccess(tenant=tenant, role=role)
