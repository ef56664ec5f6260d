"""Teachers' pages for their school's datasets (docs/datasets.md, "Pages"): the list with a form
to create one, a new version's form (the file itself goes up from the browser in chunks through
the upload API: static/js/dataset-upload.js), a version's page (the upload resumed, the
ingestion's progress, then its summary or every problem found), its preview (first rows or a
grid of images per class, the class balance, its figures and parts, the exercises using it) and
its deletion.

The tenant's teachers and administrators use them; anyone else gets 404 (learners; other
tenants: TenantMiddleware already refused outsiders). Every write goes through
apps.datasets.services, whose errors are shown on the form's fields or as a message.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from apps.core.confirm import confirm_page, confirmed
from apps.core.forms import service_errors_to_form
from apps.courses.teacher_views import teacher_or_404
from apps.datasets import selectors, services
from apps.datasets.forms import DatasetForm, VersionForm
from apps.datasets.models import DatasetVersion, SourceFormat, VersionState
from apps.datasets.source import StoredCorrupt

log = logging.getLogger(__name__)

ENDED = (VersionState.READY, VersionState.REFUSED, VersionState.FAILED)


def _dataset_or_404(request, dataset_slug):
    teacher_or_404(request)
    dataset = selectors.dataset_get(tenant=request.tenant, slug=dataset_slug)
    if dataset is None:
        raise Http404
    return dataset


def _version_or_404(request, dataset_slug, number) -> DatasetVersion:
    teacher_or_404(request)
    version = selectors.version_get(tenant=request.tenant, dataset_slug=dataset_slug, number=number)
    if version is None:
        raise Http404
    return version


def _route(version: DatasetVersion) -> dict:
    return {
        "tenant_slug": version.dataset.tenant.slug,
        "dataset_slug": version.dataset.slug,
        "number": version.number,
    }


def _version_urls(version: DatasetVersion) -> dict[str, str]:
    """What the upload script needs of a version: its page, its upload and its progress."""
    route = _route(version)
    return {
        "version_url": reverse("teach-dataset-version", kwargs=route),
        "upload_url": reverse("api-dataset-version-upload", kwargs=route),
        "progress_url": reverse("teach-dataset-version-progress", kwargs=route),
    }


def upload_words() -> dict[str, str]:
    """The upload script's sentences, translated here ("{name}" marks where a value goes)."""
    return {
        "choose": gettext("Choose the file to upload."),
        "uploading": gettext("Uploaded {sent} of {size}."),
        "retrying": gettext("The connection was lost; asking the server where the upload stands…"),
        "gave_up": gettext(
            "The upload stopped at {sent} of {size}: the server could not be reached. "
            "Choose the file again to continue from there."
        ),
        "refused": gettext("The upload was refused: {message}"),
        "uploaded": gettext("Uploaded. Checking and converting the file…"),
        "other_file": gettext(
            "This is not the file this version was begun with ({name}, {size}): choose that "
            "file to continue its upload."
        ),
        "progress": gettext("{state}: {percent}% of the file read."),
        "bytes": gettext("{n} bytes"),
        "kib": gettext("{n} KB"),
        "mib": gettext("{n} MB"),
        "gib": gettext("{n} GB"),
    }


def _upload_config(request, version: DatasetVersion | None) -> dict:
    config = {
        "chunk_bytes": settings.DATASET_UPLOAD_CHUNK_MAX_BYTES,
        "words": upload_words(),
        "ended": list(ENDED),
    }
    if version is not None:
        config.update(
            _version_urls(version),
            state=version.state,
            file_name=version.file_name,
            upload_size=version.upload_size,
            received=version.received,
        )
    return config


def datasets_page(request, tenant_slug):
    """The tenant's datasets and their versions; a form to create one."""
    teacher_or_404(request)
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_create(
                tenant=request.tenant, created_by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(
                request,
                gettext("The dataset %(title)s is created: upload its first version.")
                % {"title": dataset.title},
            )
            return redirect(
                "teach-dataset-version-new", tenant_slug=tenant_slug, dataset_slug=dataset.slug
            )
    datasets = list(selectors.dataset_list(tenant=request.tenant))
    for dataset in datasets:
        for version in dataset.versions.all():
            version.rows = selectors.version_rows(version)
            version.class_count = len((version.summary or {}).get("classes", {}))
    return render(
        request,
        "datasets/datasets.html",
        {"tenant": request.tenant, "datasets": datasets, "form": form},
    )


def _wants_json(request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def _form_errors(form) -> list[dict]:
    return [
        {
            "field": "" if name == "__all__" else name,
            "label": "" if name == "__all__" else str(form.fields[name].label or name),
            "messages": [str(message) for message in errors],
        }
        for name, errors in form.errors.items()
    ]


def version_new_page(request, tenant_slug, dataset_slug):
    """A new version: the page's script posts the form (the file's name and size with how to
    read it; JSON answers), then uploads the file in chunks. Posted without the script, the
    form answers a page with its errors."""
    dataset = _dataset_or_404(request, dataset_slug)
    form = VersionForm(request.POST or None, initial={"format": SourceFormat.CSV})
    if request.method == "POST" and form.is_valid():
        values = dict(form.api_values)
        try:
            version = services.version_create(
                dataset=dataset,
                created_by=request.user,
                file_name=values.pop("file_name"),
                size=values.pop("size"),
                format=values.pop("format"),
                options=values,
            )
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        except services.UploadFull as exc:
            form.add_error(None, str(exc))
        else:
            if _wants_json(request):
                answer = {"number": version.number, "received": 0, **_version_urls(version)}
                return JsonResponse(answer, status=201)
            return redirect("teach-dataset-version", **_route(version))
    if request.method == "POST" and _wants_json(request):
        return JsonResponse({"errors": _form_errors(form)}, status=400)
    context = {
        "tenant": request.tenant,
        "dataset": dataset,
        "form": form,
        "upload_config": _upload_config(request, None),
        "max_bytes": settings.DATASET_UPLOAD_MAX_BYTES,
    }
    return render(request, "datasets/version_new.html", context)


def version_page(request, tenant_slug, dataset_slug, number):
    """A version as it stands: its upload (resumable), the ingestion's progress, then what it
    holds or every problem found, with where."""
    version = _version_or_404(request, dataset_slug, number)
    progress = _progress(version)["progress"]
    context = {
        "tenant": request.tenant,
        "dataset": version.dataset,
        "version": version,
        "progress": progress,
        "percent": round(100 * progress),
        "rows": selectors.version_rows(version),
        "classes": selectors.version_classes(version),
        "upload_config": _upload_config(request, version),
    }
    return render(request, "datasets/version.html", context)


def _progress(version: DatasetVersion) -> dict:
    if version.state == VersionState.UPLOADING:
        fraction = version.received / version.upload_size if version.upload_size else 0.0
    else:
        fraction = services.version_progress(version)
    return {
        "state": version.state,
        "state_label": str(version.get_state_display()),
        "progress": round(fraction, 4),
        "received": version.received,
        "upload_size": version.upload_size,
        "ended": version.state in ENDED,
    }


@require_GET
def version_progress(request, tenant_slug, dataset_slug, number):
    """The version's state and how far along it is (the upload's bytes, then the fraction of
    the file the ingestion has read), as JSON for the version page's script."""
    version = _version_or_404(request, dataset_slug, number)
    return JsonResponse(_progress(version), headers={"Cache-Control": "no-store"})


def version_preview_page(request, tenant_slug, dataset_slug, number):
    """What a ready version holds: its first rows or texts, or a grid of images per class; the
    class balance; its figures; the sizes of its parts; the exercises using it. A version not
    ready yet has its own page instead."""
    version = _version_or_404(request, dataset_slug, number)
    if version.state != VersionState.READY:
        return redirect("teach-dataset-version", **_route(version))
    classes = selectors.version_classes(version)
    parts = selectors.version_parts(version)
    try:
        sample, grid = selectors.version_sample(version), _grid(version)
    except StoredCorrupt:
        log.exception("dataset version %s: its stored file cannot be read", version.id)
        sample, grid = None, []
        messages.error(
            request,
            gettext(
                "The stored file of this version cannot be read, so no sample is shown; tell "
                "an administrator."
            ),
        )
    exercises = list(
        services.exercises_using(version)
        .select_related("course")
        .order_by("course__title", "title")
    )
    context = {
        "tenant": request.tenant,
        "dataset": version.dataset,
        "version": version,
        "summary": version.summary,
        "info": version.summary.get("info", {}),
        "rows": selectors.version_rows(version),
        "classes": classes,
        "largest": max((c.count for c in classes), default=1),
        "parts": parts,
        "sample": sample,
        "grid": grid,
        "grid_images": selectors.GRID_IMAGES,
        "exercises": exercises,
    }
    return render(request, "datasets/preview.html", context)


def _grid(version: DatasetVersion) -> list[dict]:
    """The preview's grid: each class shown with the URLs of its images."""
    return [
        {
            "index": index,
            "name": name,
            "images": [
                reverse(
                    "teach-dataset-version-image",
                    kwargs={**_route(version), "class_index": index, "position": position},
                )
                for position in range(count)
            ],
        }
        for index, name, count in selectors.version_grid(version)
    ]


@require_GET
def version_sample_image(request, tenant_slug, dataset_slug, number, class_index, position):
    """A small PNG of image `position` of class `class_index` in the preview's grid of a ready
    image version; 404 for anything else."""
    version = _version_or_404(request, dataset_slug, number)
    try:
        png = selectors.version_thumbnail(version, class_index=class_index, position=position)
    except StoredCorrupt:
        log.exception("dataset version %s: its stored file cannot be read", version.id)
        png = None
    if png is None:
        raise Http404
    # A ready version never changes: the browser may keep its images (for this user only).
    return HttpResponse(
        png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


@require_POST
def version_delete(request, tenant_slug, dataset_slug, number):
    """Delete a version no exercise uses, after a confirmation; the service refuses one that an
    exercise uses, and its message says so."""
    version = _version_or_404(request, dataset_slug, number)
    back = reverse("teach-dataset-version", kwargs=_route(version))
    if not confirmed(request):
        return confirm_page(
            request,
            title=gettext("Delete a version"),
            question=gettext("Delete version %(number)d of %(title)s?")
            % {"number": version.number, "title": version.dataset.title},
            consequence=gettext(
                "Its file is deleted and its storage given back to your school; this cannot "
                "be undone. A version an exercise uses is kept."
            ),
            submit=gettext("Yes, delete the version"),
            back=back,
        )
    try:
        services.version_delete(version=version)
    except services.VersionInUse as exc:
        messages.error(request, str(exc))
        return redirect(back)
    messages.success(
        request,
        gettext("Version %(number)d of %(title)s is deleted.")
        % {"number": version.number, "title": version.dataset.title},
    )
    return redirect("teach-datasets", tenant_slug=tenant_slug)
