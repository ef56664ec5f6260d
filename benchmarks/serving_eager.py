"""The baseline web server of benchmarks/serving.py: Aula's own ASGI application, with the one
call to the inference pool replaced, in this process only, by PyTorch eager on the same model.

`uvicorn benchmarks.serving_eager:application` serves the same URL through the same fast path,
middleware, authentication, view, validation, quota count and answer as
`config.asgi:application`; only the two calls to the pool differ (`inference_run`, the view's,
and `inference_run_async`, the fast path's, which runs it in a thread so that the event loop
goes on with other requests while PyTorch computes). Instead of the binary request to the
pool, the model is rebuilt once from its spec and its stored safetensors weights, wrapped as it
is exported (`runtime.artifacts.export.ServingModel`: raw inputs in, probabilities out), and
run per request under `torch.inference_mode()` in the web process, with no batching.
Benchmark-only: nothing in the product imports it (the product never runs a model in the web
process).
"""

import asyncio
import os
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django

django.setup()  # before anything imports models

import numpy as np  # noqa: E402
import torch  # noqa: E402
from django_scopes import scope  # noqa: E402

from apps.serving import fastpath, services  # noqa: E402
from config.asgi import application  # noqa: E402

__all__ = ["application"]

_models: dict[str, torch.nn.Module] = {}
_lock = threading.Lock()


def _eager_model(tenant_id, blob_id) -> torch.nn.Module:
    from safetensors.torch import load

    from apps.trained_models.models import TrainedModel
    from apps.trained_models.services import artifact_open
    from runtime.artifacts.export import ServingModel
    from runtime.datasets import dataset_info
    from runtime.spec import build_model, parse_spec

    with _lock:
        model = _models.get(str(blob_id))
        if model is not None:
            return model
        with scope(tenant=tenant_id):
            # Equal ONNX files are one blob (content-addressed): any of its models will do.
            row = (
                TrainedModel.objects.select_related("weights", "submission")
                .filter(tenant_id=tenant_id, onnx_id=blob_id)
                .first()
            )
            weights = artifact_open(row.weights)
        spec, info = row.submission.spec, dataset_info(row.dataset)
        module = build_model(spec, info)
        module.load_state_dict(load(weights))
        model = ServingModel(module, info=info, training=parse_spec(spec).training).eval()
        _models[str(blob_id)] = model
        return model


def eager_run(*, tenant_id, blob_id, array: np.ndarray) -> np.ndarray:
    """inference_run's contract (float32 [rows, classes]), computed here by PyTorch eager."""
    model = _eager_model(tenant_id, blob_id)
    with torch.inference_mode():
        return model(torch.from_numpy(array)).numpy()


async def eager_run_async(*, tenant_id, blob_id, array: np.ndarray) -> np.ndarray:
    return await asyncio.to_thread(eager_run, tenant_id=tenant_id, blob_id=blob_id, array=array)


services.inference_run = eager_run  # the name prediction_run calls
fastpath.inference_run_async = eager_run_async  # the name the fast path calls
