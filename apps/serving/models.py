"""API keys a learner makes for one of their trained models: a key authorises predictions of that
model only. Only a hash of the secret is kept; the secret is shown once, when it is made."""

import uuid

from django.conf import settings
from django.db import models
from django_scopes import ScopedManager

from apps.tenants.models import Tenant


class ModelApiKey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    trained_model = models.ForeignKey(
        "trained_models.TrainedModel", on_delete=models.CASCADE, related_name="api_keys"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_api_keys"
    )
    name = models.CharField(max_length=100)
    # The secret's first characters, shown in lists so that people can tell keys apart, and the
    # index a presented key is looked up by; then its hash is compared.
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)  # sha256 hex of the whole secret
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
