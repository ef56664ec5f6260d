"""Base model shared by every domain app."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    """A row with a UUID key (safe to expose in URLs) and creation/update times."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
