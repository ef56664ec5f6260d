"""The try-your-model page: a trained model's input widget and its class probabilities, the
model run in the browser (onnxruntime-web) when its ONNX file is small enough, else on the
inference pool through the prediction API. Whoever may see the model may try it (selectors:
its learner, the course's teachers, the tenant's admins); anyone else gets 404."""

from django.conf import settings
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse

from apps.trained_models.selectors import trained_model_get
from apps.trained_models.try_inputs import example_for, page_text, try_input_for
from runtime.datasets import dataset_info


def try_config(request, model) -> dict:
    """What static/js/try-model.js needs for `model` (the try page and the run page)."""
    info = dataset_info(model.dataset)
    widget = try_input_for(info)
    route = {"tenant_slug": request.tenant.slug, "model_id": model.id}
    return {
        "model": str(model.id),
        "onnx_url": reverse("trained-model-onnx", kwargs=route),
        "predict_url": reverse("api-model-predict", kwargs=route),
        "in_browser": model.onnx.size <= settings.TRY_IN_BROWSER_MAX_BYTES,
        "max_batch": settings.PREDICT_MAX_BATCH,
        "ort_base": static("vendor/onnxruntime-web/"),
        "csrf": get_token(request),
        "class_names": list(info.class_names),
        "input": widget,
        "example": example_for(info, widget),
        "text": page_text(),
    }


def try_page(request, tenant_slug, model_id):
    model = trained_model_get(user=request.user, tenant=request.tenant, model_id=model_id)
    context = {
        "tenant": request.tenant,
        "model": model,
        "card": model.card,
        "try_config": try_config(request, model),
    }
    return render(request, "trained_models/try.html", context)
