"""The try-your-model page: a trained model's input widget and its class probabilities, the
model run in the browser (onnxruntime-web) when its ONNX file is small enough, else on the
inference pool through the prediction API. A text model's page is a form: the text is posted
here, encoded with the model's tokeniser and run on the inference pool as the prediction API
runs texts (texts.py), and the page shows the probabilities. Whoever may see the model may try
it (selectors: its learner, the course's teachers, the tenant's admins); anyone else gets 404."""

from django.conf import settings
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.trained_models.selectors import trained_model_get
from apps.trained_models.texts import TryFailed, model_tokenizer, texts_try
from apps.trained_models.try_inputs import example_for, page_text, try_input_for
from runtime.datasets import dataset_info

MAX_TRY_TEXT_CHARS = 2000


def try_config(request, model) -> dict:
    """What static/js/try-model.js needs for `model` (the try page and the run page)."""
    info = dataset_info(model.dataset)
    widget = try_input_for(info, tokenizer=model_tokenizer(model))
    route = {"tenant_slug": request.tenant.slug, "model_id": model.id}
    return {
        "model": str(model.id),
        "try_url": reverse("trained-model-try", kwargs=route),
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
    config = try_config(request, model)
    context = {"tenant": request.tenant, "model": model, "card": model.card, "try_config": config}
    if request.method == "POST" and config["input"]["widget"] == "text":
        context.update(_text_tried(model, config, request.POST.get("text", "")))
    return render(request, "trained_models/try.html", context)


def _text_tried(model, config: dict, text: str) -> dict:
    """The page's answer for a posted text: the ranked class probabilities, or why not."""
    answer = {"tried_text": text}
    if not text.strip():
        return {**answer, "try_error": _("Type a text to classify.")}
    if len(text) > MAX_TRY_TEXT_CHARS:
        return {
            **answer,
            "try_error": _("The text has %(n)s characters; at most %(max)s are tried.")
            % {"n": len(text), "max": MAX_TRY_TEXT_CHARS},
        }
    try:
        probabilities = texts_try(model, [text])[0]
    except TryFailed as exc:
        return {**answer, "try_error": exc.message}
    names = config["class_names"]
    ranked = sorted(
        ((float(p), names[i]) for i, p in enumerate(probabilities)), key=lambda pair: -pair[0]
    )
    return {**answer, "try_ranked": [{"label": label, "p": p} for p, label in ranked]}
