"""factory_boy factories for the domain's rows."""

import functools
import secrets
from datetime import timedelta

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.accounts.models import User
from apps.tenants.models import Invitation, Membership, Role, Tenant
from apps.tenants.selectors import token_digest

PASSWORD = "correct horse battery staple"


@functools.cache
def _password_hash() -> str:
    # Hashed once: the real hasher costs ~0.3 s a call, and every user shares this password.
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    full_name = factory.Faker("name")
    password = factory.LazyFunction(_password_hash)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"school-{n}")
    name = factory.Sequence(lambda n: f"School {n}")


class ScopesDisabledFactory(factory.django.DjangoModelFactory):
    """Tenant-owned rows are made outside any request, so the factory lifts the scope."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class MembershipFactory(ScopesDisabledFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.LEARNER


class InvitationFactory(ScopesDisabledFactory):
    """Pass raw_token=… to know the link's token; the row stores only its digest."""

    class Meta:
        model = Invitation
        exclude = ["raw_token"]

    raw_token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.org")
    role = Role.LEARNER
    token_digest = factory.LazyAttribute(lambda o: token_digest(o.raw_token))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
