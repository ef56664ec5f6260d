"""Demo data for `make run`: one tenant with an admin, a teacher and two learners.

Idempotent: a second run finds the rows and changes nothing, so restarting never duplicates.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django_scopes import scope

from apps.tenants.models import Membership, Role, Tenant
from apps.tenants.services import membership_create, tenant_create

DEMO_TENANT_SLUG = "demo"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin@demo.aula.localhost", "demo-admin-pass", Role.ADMIN),
    DemoLogin("teacher@demo.aula.localhost", "demo-teacher-pass", Role.TEACHER),
    DemoLogin("ada@demo.aula.localhost", "demo-learner-pass", Role.LEARNER),
    DemoLogin("alan@demo.aula.localhost", "demo-learner-pass", Role.LEARNER),
)
PLATFORM_ADMIN = DemoLogin("root@aula.localhost", "demo-platform-pass", "platform admin")


@transaction.atomic
def demo_seed() -> tuple[Tenant, bool]:
    """Returns the demo tenant and whether this call created anything."""
    User = get_user_model()
    created = False
    tenant = Tenant.objects.filter(slug=DEMO_TENANT_SLUG).first()
    if tenant is None:
        tenant = tenant_create(slug=DEMO_TENANT_SLUG, name="Aula Demo School")
        created = True
    if not User.objects.filter(email=PLATFORM_ADMIN.email).exists():
        User.objects.create_superuser(email=PLATFORM_ADMIN.email, password=PLATFORM_ADMIN.password)
        created = True
    for login in DEMO_LOGINS:
        user = User.objects.filter(email=login.email).first()
        if user is None:
            name = login.email.split("@")[0].capitalize()
            user = User.objects.create_user(
                email=login.email, password=login.password, full_name=name
            )
            created = True
        with scope(tenant=tenant):
            if not Membership.objects.filter(tenant=tenant, user=user).exists():
                membership_create(tenant=tenant, user=user, role=login.role)
                created = True
    return tenant, created
