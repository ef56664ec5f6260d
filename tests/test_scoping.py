"""Every tenant-owned model is scoped: a query outside `scope(tenant=…)` raises."""

import pytest
from django.apps import apps
from django.db import transaction
from django_scopes import ScopeError, scope

from apps.audit.services import audit_record
from apps.tenants.models import Tenant


def _tenant_owned_models():
    return [
        model
        for model in apps.get_models()
        if any(
            getattr(field, "related_model", None) is Tenant and field.many_to_one
            for field in model._meta.get_fields()
        )
    ]


def test_every_tenant_owned_model_has_a_scoped_manager():
    models = _tenant_owned_models()
    assert {m._meta.label for m in models} >= {"tenants.Membership", "tenants.Invitation"}
    for model in models:
        with pytest.raises(ScopeError):
            list(model.objects.all())


def _learning_rows(world):
    """Nor learning records: write one of each kind through the services."""
    from apps.learning import services, tutoring
    from apps.learning.tracing import bkt_fit_tenant

    learner = world.learner.user
    services.lesson_viewed(user=learner, lesson=world.lesson)  # a statement
    services.run_diagnose(job=world.job)
    services.mastery_observe(
        tenant_id=world.tenant.id,
        user_id=learner.id,
        skill_id=world.skill.id,
        submission_id=world.submission.id,
        correct=True,
    )
    bkt_fit_tenant(world.tenant.id)  # skill parameters
    services.tutor_settings_set(
        tenant=world.tenant, actor=world.admin.user, endpoint_url="", model="", tokens_per_month=10
    )
    tutoring.exchange_record(
        tenant=world.tenant, user=learner, question="q", answer="a", citations=[]
    )


def _model_rows(world):
    """Nor kept models, their files, showcases, regrades, grade notices and the day's
    prediction count and model API keys."""
    from django_scopes import scopes_disabled

    from apps.jobs.models import Regrade
    from apps.jobs.regrade import assignment_regrade_run
    from apps.quotas.services import predictions_admit
    from apps.serving.services import model_key_create
    from apps.trained_models.services import showcase_choose
    from tests.models_support import stored_model

    model = stored_model(world, dataset="digits", trained=False)
    showcase_choose(model=model, by=world.learner.user)
    with scope(tenant=world.tenant.id):
        model_key_create(trained_model=model, user=world.learner.user, name="scoping")
    with scopes_disabled():  # thresholds under which the stored grade (80) changes
        type(model.exercise).objects.filter(pk=model.exercise_id).update(
            min_metric=0.0, target_metric=0.01
        )
        regrade = Regrade.objects.create(
            tenant=world.tenant, assignment=model.submission.assignment, requested_by=None
        )
    with scope(tenant=world.tenant.id):
        assert assignment_regrade_run(regrade_id=regrade.id).regraded == 1
    predictions_admit(tenant_id=world.tenant.id, samples=1)
    with scopes_disabled():  # an upload's chunk (a row: the scope is about rows)
        world.dataset_version.chunks.create(
            tenant=world.tenant, offset=0, size=4, storage_name="not/stored"
        )


@pytest.mark.django_db
def test_a_scope_shows_only_its_tenants_rows(tenant_a, tenant_b, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    for world in (tenant_a, tenant_b):  # the worlds hold no audit rows: record an action in each
        with transaction.atomic():
            audit_record(
                actor=world.admin.user,
                action="test",
                target=world.tenant,
                before=None,
                after=None,
                tenant=world.tenant,
            )
        _learning_rows(world)
        _model_rows(world)
    for model in _tenant_owned_models():
        with scope(tenant=tenant_a.tenant):
            rows = list(model.objects.all())
        assert rows and {row.tenant_id for row in rows} == {tenant_a.tenant.id}, model
