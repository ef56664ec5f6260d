"""Model API keys (make, revoke) and predictions: the quota, the inference pool, the key's use."""

import secrets

import numpy as np
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.quotas.services import predictions_admit, predictions_today
from apps.serving.inference.client import InferenceRefused, InferenceUnavailable, inference_run
from apps.serving.inputs import BadInput, InputSpec, samples_decode
from apps.serving.models import ModelApiKey
from apps.serving.selectors import KEY_PREFIX, PREFIX_LENGTH, key_hash
from apps.trained_models.texts import TryFailed, model_tokenizer
from runtime.datasets import dataset_info


class PredictionQuotaExceeded(Exception):
    """The tenant's predictions for today would pass its daily allowance."""


def model_key_create(*, trained_model, user, name: str) -> tuple[ModelApiKey, str]:
    """A new key for `trained_model` and its secret (shown once: only its hash is kept)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ModelApiKey(
        tenant_id=trained_model.tenant_id,
        trained_model=trained_model,
        created_by=user,
        name=name,
        prefix=raw[:PREFIX_LENGTH],
        key_hash=key_hash(raw),
    )
    key.full_clean()
    key.save()
    return key, raw


def model_key_revoke(*, key: ModelApiKey) -> ModelApiKey:
    """Revokes `key` from now on; revoking it again keeps the first time."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def _quota_refusal(tenant_id, samples: int) -> PredictionQuotaExceeded:
    _requests, used, allowed = predictions_today(tenant_id)
    return PredictionQuotaExceeded(
        _(
            "This tenant's predictions for today are used up: %(used)s of %(allowed)s samples, "
            "and this request has %(samples)s. The allowance starts again at midnight UTC."
        )
        % {"used": used, "allowed": allowed, "samples": samples}
    )


def prediction_run(*, trained_model, samples: np.ndarray, key: ModelApiKey | None) -> np.ndarray:
    """The model's probabilities for `samples` (already validated), run by the inference pool;
    counted against the tenant's daily allowance only once answered, so that nothing refused
    (over the allowance, the pool down, the model failing) is counted or marks the key used."""
    tenant_id, count = trained_model.tenant_id, int(samples.shape[0])
    _requests, used, allowed = predictions_today(tenant_id)
    if used + count > allowed:  # refused before the pool spends anything on it
        raise _quota_refusal(tenant_id, count)
    output = inference_run(tenant_id=tenant_id, blob_id=trained_model.onnx_id, array=samples)
    if not predictions_admit(tenant_id=tenant_id, samples=count):  # another request took it
        raise _quota_refusal(tenant_id, count)
    if key is not None:
        ModelApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return output


def prediction_answer(*, model_id, info, output: np.ndarray) -> dict | None:
    """The API's answer for the model's `output` (one row of probabilities per sample); None
    when the rows do not have one probability per class of the dataset (`info`)."""
    names = list(info.class_names)
    if output.ndim != 2 or output.shape[1] != len(names):
        return None
    best = output.argmax(axis=1)
    predictions = [
        {"label": names[index], "class_index": int(index), "probabilities": row.tolist()}
        for index, row in zip(best, output, strict=True)
    ]
    return {"model": str(model_id), "predictions": predictions, "class_names": names}


def texts_try_run(model, texts: list[str]) -> np.ndarray:
    """The try page's run of a text model (apps/trained_models/texts.py): the texts decoded,
    encoded with the model's tokeniser and run exactly as the prediction API does it, counted
    the same way; a refusal is TryFailed with the API's message."""
    info = dataset_info(model.dataset)
    try:
        samples = samples_decode(spec=InputSpec.of(info, model_tokenizer(model)), texts=texts)
        output = prediction_run(trained_model=model, samples=samples, key=None)
    except BadInput as exc:
        raise TryFailed(exc.message) from None
    except PredictionQuotaExceeded as exc:
        raise TryFailed(str(exc)) from None
    except InferenceUnavailable:
        raise TryFailed(_("The inference service is not answering; try again shortly.")) from None
    except InferenceRefused as exc:
        raise TryFailed(
            _("The model failed while running: %(why)s") % {"why": exc.message}
        ) from None
    if output.ndim != 2 or output.shape[1] != len(info.class_names):
        raise TryFailed(
            _("the model answered %(got)s classes; its dataset has %(want)s")
            % {"got": output.shape[1], "want": len(info.class_names)}
        )
    return output
