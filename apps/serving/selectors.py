"""Reads of model API keys."""

import hashlib
import hmac

from apps.serving.models import ModelApiKey

KEY_PREFIX = "amk_"
PREFIX_LENGTH = 12  # "amk_" and 8 characters of the secret


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def model_keys_list(*, trained_model):
    return ModelApiKey.objects.filter(trained_model=trained_model).select_related("created_by")


def model_key_get(*, trained_model, key_id) -> ModelApiKey:
    """The model's key `key_id`; ModelApiKey.DoesNotExist when it has none of that id."""
    return ModelApiKey.objects.get(trained_model=trained_model, id=key_id)


def model_key_by_secret(*, raw: str) -> ModelApiKey | None:
    """The key (of the tenant in scope) whose secret is `raw`, revoked or not; None if none."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    presented = key_hash(raw)
    for key in ModelApiKey.objects.filter(prefix=raw[:PREFIX_LENGTH]).select_related("created_by"):
        if hmac.compare_digest(key.key_hash, presented):
            return key
    return None
