"""Datasets API, under /api/v1/t/<slug>/datasets/: the tenant's teachers create datasets and
upload versions (docs/datasets.md); learners and others are refused (403 to a member without the
teacher role, 404 to anyone outside the tenant).

An upload is resumable: POST .../versions/ declares the file (name, size, format, how to read
it) and counts its size against the storage quota; PATCH .../versions/<n>/upload sends the bytes
in chunks of at most DATASET_UPLOAD_CHUNK_MAX_BYTES, each with the `Upload-Offset` header saying
where it starts (a chunk that does not start where the upload stands is a 409 giving `received`,
so a client resumes from there); GET .../upload says where it stands. The last chunk starts the
ingestion; GET .../versions/<n>/ shows its progress, then the summary or the problems.
"""

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.errors import ConflictError, answers
from apps.core.api.pagination import PageNumberPagination
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.datasets import services
from apps.datasets.models import Dataset, DatasetVersion, SourceFormat, TableKind
from apps.tenants.permissions import TenantTeacher
from runtime.text import KINDS as TOKENIZER_KINDS


class VersionOutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        source="source_name", help_text="The dataset name an exercise uses for this version."
    )
    progress = serializers.SerializerMethodField(help_text="Of the ingestion, 0 to 1.")

    class Meta:
        model = DatasetVersion
        fields = [
            "number",
            "name",
            "state",
            "format",
            "options",
            "file_name",
            "upload_size",
            "received",
            "progress",
            "data_size",
            "summary",
            "problems",
            "problems_more",
            "message",
            "created_at",
            "ingested_at",
        ]

    def get_progress(self, version) -> float:
        return services.version_progress(version)


class DatasetOutputSerializer(serializers.ModelSerializer):
    versions = VersionOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "slug", "title", "description", "versions", "created_at"]


class DatasetInputSerializer(InputSerializer):
    slug = serializers.SlugField(max_length=50)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class VersionInputSerializer(InputSerializer):
    file_name = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1, help_text="The file's bytes, all of them.")
    format = serializers.ChoiceField(choices=SourceFormat.choices)
    kind = serializers.ChoiceField(
        choices=TableKind.choices, required=False, help_text="CSV/TSV: number columns or text."
    )
    label_column = serializers.CharField(max_length=200, required=False)
    text_column = serializers.CharField(max_length=200, required=False)
    delimiter = serializers.ChoiceField(
        choices=[(",", "comma"), ("\t", "tab"), (";", "semicolon")], required=False
    )
    tokenizer = serializers.ChoiceField(
        choices=[(kind, kind) for kind in TOKENIZER_KINDS],
        required=False,
        help_text="Text tables: how texts become tokens (word: words, a Chinese character each; "
        "bpe: pieces of words; char: characters). Default: word.",
    )
    resize_to = serializers.ListField(
        child=serializers.IntegerField(min_value=4, max_value=512),
        min_length=2,
        max_length=2,
        required=False,
        help_text="Images: [height, width] every image is resized to (else mixed sizes are "
        "refused).",
    )


class UploadOutputSerializer(serializers.Serializer):
    state = serializers.CharField()
    received = serializers.IntegerField(help_text="Bytes stored: the next chunk starts here.")
    upload_size = serializers.IntegerField()


@answers(services.OffsetMismatch)
class OffsetConflict(ConflictError):
    """The chunk does not start where the upload stands; the answer's message says where."""

    default_code = "offset_mismatch"


@answers(services.UploadFull)
class UploadTooLarge(exceptions.APIException):
    """The upload does not fit the tenant's storage quota (nothing was stored)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "storage_full"


class ChunkParser(BaseParser):
    """A chunk of an upload: the body's bytes as they are, at most the chunk limit."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATASET_UPLOAD_CHUNK_MAX_BYTES
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise ValidationError({"body": [_("A chunk is at most %(n)d bytes.") % {"n": limit}]})
        return data


class DatasetsApiView(ApiView):
    permission_classes = [*ApiView.permission_classes, TenantTeacher]
    pagination_class = PageNumberPagination


def _dataset(request, dataset_slug) -> Dataset:
    dataset = Dataset.objects.filter(tenant=request.tenant, slug=dataset_slug).first()
    if dataset is None:
        raise NotFound()
    return dataset


def _version(request, dataset_slug, number) -> DatasetVersion:
    version = (
        DatasetVersion.objects.filter(
            tenant=request.tenant, dataset__slug=dataset_slug, number=number
        )
        .select_related("dataset")
        .first()
    )
    if version is None:
        raise NotFound()
    return version


class DatasetListApi(DatasetsApiView):
    """The tenant's datasets with their versions; teachers create them."""

    input_serializers = {"post": DatasetInputSerializer}

    @extend_schema(responses=DatasetOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        datasets = Dataset.objects.filter(tenant=request.tenant).prefetch_related("versions")
        return self.paginated(request, datasets.order_by("title", "pk"), DatasetOutputSerializer)

    @extend_schema(request=DatasetInputSerializer, responses={201: DatasetOutputSerializer})
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        dataset = services.dataset_create(tenant=request.tenant, created_by=request.user, **values)
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(DatasetsApiView):
    """A dataset and its versions."""

    @extend_schema(responses=DatasetOutputSerializer)
    def get(self, request, tenant_slug, dataset_slug):
        return Response(DatasetOutputSerializer(_dataset(request, dataset_slug)).data)


class VersionListApi(DatasetsApiView):
    """Begin uploading a new version: declare the file; its size counts against the quota."""

    input_serializers = {"post": VersionInputSerializer}
    raises = {"post": [UploadTooLarge]}

    @extend_schema(request=VersionInputSerializer, responses={201: VersionOutputSerializer})
    def post(self, request, tenant_slug, dataset_slug):
        dataset = _dataset(request, dataset_slug)
        values = self.validated_input(request)
        version = services.version_create(
            dataset=dataset,
            created_by=request.user,
            file_name=values.pop("file_name"),
            size=values.pop("size"),
            format=values.pop("format"),
            options=values,
        )
        return Response(VersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailApi(DatasetsApiView):
    """A version: its state and progress, then its summary or the problems found; a version
    no exercise uses can be deleted (its files and its quota go with it)."""

    raises = {"delete": [ConflictError]}

    @extend_schema(responses=VersionOutputSerializer)
    def get(self, request, tenant_slug, dataset_slug, number):
        return Response(VersionOutputSerializer(_version(request, dataset_slug, number)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, tenant_slug, dataset_slug, number):
        services.version_delete(version=_version(request, dataset_slug, number))
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionUploadApi(DatasetsApiView):
    """Where an upload stands (GET), and its next chunk (PATCH, the raw bytes with the
    `Upload-Offset` header)."""

    parser_classes = [ChunkParser]
    raises = {"patch": [OffsetConflict, ConflictError]}

    def initial(self, request, *args, **kwargs):
        APIView.initial(self, request, *args, **kwargs)  # the body is the chunk, not JSON

    @extend_schema(responses=UploadOutputSerializer)
    def get(self, request, tenant_slug, dataset_slug, number):
        return Response(UploadOutputSerializer(_version(request, dataset_slug, number)).data)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "Upload-Offset",
                int,
                OpenApiParameter.HEADER,
                required=True,
                description="Where this chunk starts in the file (the bytes received so far).",
            )
        ],
        responses=UploadOutputSerializer,
    )
    def patch(self, request, tenant_slug, dataset_slug, number):
        version = _version(request, dataset_slug, number)
        header = request.headers.get("Upload-Offset", "")
        if not header.isdigit():
            raise ValidationError(
                {"Upload-Offset": [_("Send the chunk's offset in the file as a whole number.")]}
            )
        data = request.data if isinstance(request.data, bytes) else b""
        version = services.chunk_append(version=version, offset=int(header), data=data)
        return Response(UploadOutputSerializer(version).data)
