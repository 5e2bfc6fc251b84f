"""The batch API of SPEC section 4: thin views over the services (what happens) and the selectors
(what a key's customer may see). Every tenant-scoped read goes through selectors, so another
customer's integration or run is a 404, indistinguishable from one that does not exist."""

import json

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import generics
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..changes_csv import change_csv_rows
from ..conf import conf
from ..errors_csv import error_csv_rows
from ..exceptions import TooLarge
from ..formats import MediaType, media_type_of
from ..ingest.journal import fill_created
from ..ingest.transport import CONTENT_ENCODINGS
from ..targets import get_target
from . import serializers as s
from .auth import ApiKeyAuthentication, HasActiveCustomerKey
from .errors import exception_handler
from .pagination import ApiPagination
from .parsers import JSONParser, ProtobufParser
from .schema import extend_schema
from .throttling import ApiKeyRateThrottle

# room for the multipart envelope around an uploaded file of the largest allowed size
MULTIPART_OVERHEAD = 1024 * 1024


class JSONOnly(BaseContentNegotiation):
    """Answers are JSON whatever the Accept header or `?format=` say (CSV is streamed by hand)."""

    def select_parser(self, request, parsers):
        media = media_type_of(request.content_type)
        for parser in parsers:
            if parser.media_type == media:
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _errors(*codes: int) -> dict:
    descriptions = {
        400: "invalid request",
        401: "no, a bad, a revoked or an expired API key",
        403: "the key's customer is not active",
        404: "no such integration, run or page (for this key)",
        409: "conflict with the run's state or an earlier batch",
        413: "body too large",
        415: "unsupported Content-Type or Content-Encoding",
        422: "Idempotency-Key reused with another body",
        429: "throttled; see the Retry-After header",
    }
    return {code: OpenApiResponse(s.ErrorOutput, description=descriptions[code]) for code in codes}


COMMON = (401, 403, 429)
RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the run's id")


class OwnSettingsView(APIView):
    """Every policy DRF would otherwise take from the host's REST_FRAMEWORK setting is set here, so a
    host's defaults (session auth, IsAuthenticated, the browsable API, another pagination or schema
    class, its exception handler) never change this API (SPEC section 12)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    content_negotiation_class = JSONOnly
    metadata_class = SimpleMetadata
    versioning_class = None
    schema = AutoSchema()

    def get_exception_handler(self):
        return exception_handler


class ApiView(OwnSettingsView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasActiveCustomerKey]
    throttle_classes = [ApiKeyRateThrottle]

    @property
    def customer(self):
        return self.request.auth.customer

    def strict_query(self, serializer_class):
        query = serializer_class(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        return query.validated_data

    def run_answer(self, run, status):
        return Response(s.RunOutput(run, context={"request": self.request}).data, status=status)


class ApiListView(ApiView, generics.ListAPIView):
    pagination_class = ApiPagination

    def list(self, request, *args, **kwargs):
        self.strict_query(self.query_class)
        return super().list(request, *args, **kwargs)

    query_class = s.PageQuery


# the API root's map: name -> path below the root (SPEC section 4, in the order of its table)
ROOT_MAP = {
    "integrations": "integrations/",
    "integration_runs": "integrations/{slug}/runs/",
    "integration_uploads": "integrations/{slug}/uploads/",
    "run": "runs/{run_id}/",
    "run_batches": "runs/{run_id}/batches/",
    "run_complete": "runs/{run_id}/complete/",
    "run_cancel": "runs/{run_id}/cancel/",
    "run_errors": "runs/{run_id}/errors/",
    "run_changes": "runs/{run_id}/changes/",
}


@extend_schema(tags=["api"])
class ApiRootView(OwnSettingsView):
    """GET on the root of the API: where everything is, without a key (a map, not data)."""

    @extend_schema(
        summary="The API root: a map of the endpoints and the docs", auth=[], responses={200: s.ApiRootOutput}
    )
    def get(self, request):
        root = request.build_absolute_uri(reverse("api-root"))
        return Response(
            {
                "name": "Integrations API",
                "authentication": "Authorization: Bearer <prefix>.<secret> (an API key of your customer)",
                "endpoints": {name: root + path for name, path in ROOT_MAP.items()},
                "schema": request.build_absolute_uri(reverse("api-schema")),
                "docs": request.build_absolute_uri(reverse("api-docs")),
                "redoc": request.build_absolute_uri(reverse("api-redoc")),
            }
        )


@extend_schema(tags=["integrations"])
class IntegrationListView(ApiListView):
    serializer_class = s.IntegrationOutput

    def get_queryset(self):
        return selectors.integrations_for(self.customer).order_by("-created_at", "slug")

    @extend_schema(
        summary="The key's customer's integrations",
        responses={200: s.IntegrationOutput(many=True), **_errors(400, *COMMON, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["runs"])
class IntegrationRunsView(ApiListView):
    serializer_class = s.RunOutput

    def get_queryset(self):
        integration = selectors.integration_for(self.customer, self.kwargs["slug"])
        return selectors.runs_for(self.customer).filter(integration=integration).order_by("-created_at", "-pk")

    @extend_schema(
        summary="An integration's runs, newest first",
        responses={200: s.RunOutput(many=True), **_errors(400, *COMMON, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Open a run",
        description="Opens a run in `receiving`. With `Idempotency-Key`, the same key and body within 24 hours "
        "answer 200 with the same run; the same key with another body, 422.",
        request=s.RunCreateInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="any string up to 200 characters, unique per run you mean to open",
            )
        ],
        responses={
            201: OpenApiResponse(s.RunOutput, description="a new run"),
            200: OpenApiResponse(s.RunOutput, description="the run this Idempotency-Key opened"),
            **_errors(400, *COMMON, 404, 415, 422),
        },
        examples=[OpenApiExample("full snapshot", value={"mode": "full", "dry_run": False}, request_only=True)],
    )
    def post(self, request, slug):
        integration = selectors.integration_for(self.customer, slug)
        idempotency_key = request.headers.get("Idempotency-Key", "").strip()
        if len(idempotency_key) > 200:
            raise ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        data = request.data
        body = s.RunCreateInput(data=data)
        body.is_valid(raise_exception=True)
        fingerprint = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        run, created = services.run_create(
            integration=integration,
            mode=body.validated_data.get("mode"),
            dry_run=body.validated_data["dry_run"],
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return self.run_answer(run, 201 if created else 200)


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class RunDetailView(ApiView):
    @extend_schema(
        summary="A run",
        description="With `?wait=N` (more than 0, at most 60 seconds) a long-poll: the answer comes as soon as "
        "the run's status or progress changes, or after N seconds, and at once for a run that is "
        "settled (an end state or `needs_review`).",
        parameters=[OpenApiParameter("wait", OpenApiTypes.NUMBER, description="long-poll for up to N seconds")],
        responses={200: s.RunOutput, **_errors(400, *COMMON, 404)},
    )
    def get(self, request, run_id):
        query = self.strict_query(s.RunQuery)
        run = selectors.run_for(self.customer, run_id)
        if query.get("wait"):
            # holds this web worker (a gunicorn sync worker) for up to N seconds, polling the row
            run = selectors.run_wait_for_change(run, query["wait"])
        return self.run_answer(run, 200)


def _read_body(request, limit: int) -> bytes:
    """The raw request body, at most `limit` bytes, without Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    (meant for forms): a 50,000-record batch is many megabytes."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise TooLarge(f"body is {length} bytes, above the limit of {limit}", details={"limit": limit})
    stream = request.stream  # None for an empty body
    if stream is None:
        return b""
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"body is above the limit of {limit} bytes", details={"limit": limit})
    return body


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class BatchView(ApiView):
    parser_classes = [JSONParser, ProtobufParser]

    @extend_schema(
        summary="Post a batch",
        description=(
            'JSON `{"seq": 1, "records": [...], "deletes": [...]}` or the protobuf `Batch` message of '
            "`integrations/proto/batch.proto` (`Content-Type: application/x-protobuf`); either may be sent with "
            "`Content-Encoding: gzip`. At most `INTEGRATIONS_MAX_BATCH_RECORDS` records (default 50,000) and `INTEGRATIONS_MAX_BATCH_BYTES` (default 64 MiB, "
            "after decompression). The raw bytes are stored before the answer. Posting the same seq with the same "
            "bytes again answers 200 with the same answer; other bytes under that seq, 409."
        ),
        request={MediaType.JSON: s.BatchInput, MediaType.PROTOBUF: OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "Content-Encoding",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                enum=["gzip", "identity"],
                description="gzip: the body is gzip-compressed",
            )
        ],
        responses={
            202: OpenApiResponse(s.BatchOutput, description="batch received"),
            200: OpenApiResponse(s.BatchOutput, description="this batch was already received"),
            **_errors(400, *COMMON, 404, 409, 413, 415),
        },
        examples=[
            OpenApiExample(
                "JSON batch",
                request_only=True,
                media_type=MediaType.JSON,
                value={
                    "seq": 1,
                    "records": [{"sku": "A-1", "name": "Chair", "price": "49.90", "currency": "EUR"}],
                    "deletes": ["OLD-7"],
                },
            )
        ],
    )
    def post(self, request, run_id):
        run = selectors.run_for(self.customer, run_id)
        content_type = media_type_of(request.content_type)
        if content_type not in (MediaType.JSON, MediaType.PROTOBUF):
            raise UnsupportedMediaType(
                content_type or "none",
                detail=f"Content-Type must be {MediaType.JSON} or {MediaType.PROTOBUF}, not {content_type or 'none'!r}",
            )
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in CONTENT_ENCODINGS:
            raise UnsupportedMediaType(encoding, detail=f"Content-Encoding {encoding!r} is not supported; use gzip")
        body = _read_body(request, conf.MAX_BATCH_BYTES)
        batch, created = services.batch_receive(
            run=run,
            seq=None,
            body=body,
            content_type=content_type,
            content_encoding="" if encoding == "identity" else encoding,
        )
        return Response(s.BatchOutput(batch).data, status=202 if created else 200)


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class RunCompleteView(ApiView):
    @extend_schema(
        summary="Complete a run",
        description="Closes the run to batches and queues it. The optional counts are an integrity check: when "
        "they differ from what was received, 409 and the run stays open. Completing again: 200.",
        request=s.RunCompleteInput,
        responses={
            202: OpenApiResponse(s.RunOutput, description="queued"),
            200: OpenApiResponse(s.RunOutput, description="already completed"),
            **_errors(400, *COMMON, 404, 409, 415),
        },
    )
    def post(self, request, run_id):
        run = selectors.run_for(self.customer, run_id)
        body = s.RunCompleteInput(data=request.data)
        body.is_valid(raise_exception=True)
        run, changed = services.run_complete(
            run=run,
            expected_batches=body.validated_data.get("batches"),
            expected_records=body.validated_data.get("records"),
        )
        return self.run_answer(run, 202 if changed else 200)


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class RunCancelView(ApiView):
    @extend_schema(
        summary="Cancel a run",
        description="Only before it is applied; else 409.",
        request=None,
        responses={200: s.RunOutput, **_errors(*COMMON, 404, 409)},
    )
    def post(self, request, run_id):
        run = selectors.run_for(self.customer, run_id)
        return self.run_answer(services.run_cancel(run=run, reason="cancelled by the customer"), 200)


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class RunErrorsView(ApiListView):
    serializer_class = s.RecordErrorOutput
    query_class = s.ErrorsQuery

    def get_queryset(self):
        run = selectors.run_for(self.customer, self.kwargs["run_id"])
        return selectors.run_errors(run, code=self.request.query_params.get("code") or None)

    @extend_schema(
        summary="A run's record errors",
        description="Paginated, in batch order. `?format=csv` streams every error as CSV instead: the target's "
        "fields in schema order, then any unknown fields the records carried, then `error_code`, "
        "`error_message`, `error_fields`, `error_seq`, `error_index`. Every upload ignores columns "
        "named `error_*`, so the fixed file goes back as it is.",
        parameters=[
            OpenApiParameter(
                "code",
                OpenApiTypes.STR,
                enum=[c for c in s.RecordError.Code.values],
                description="only errors of this code",
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: the CSV download"),
        ],
        responses={
            (200, MediaType.JSON): OpenApiResponse(s.RecordErrorOutput(many=True)),
            (200, MediaType.CSV): OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv"),
            **_errors(400, *COMMON, 404),
        },
    )
    def get(self, request, *args, **kwargs):
        query = self.strict_query(s.ErrorsQuery)
        if query["format"] == "csv":
            run = selectors.run_for(self.customer, self.kwargs["run_id"])
            errors = selectors.run_errors(run, code=self.request.query_params.get("code") or None)
            rows = error_csv_rows(errors, integration=run.integration)
            response = StreamingHttpResponse(rows, content_type=f"{MediaType.CSV}; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="run-{self.kwargs["run_id"]}-errors.csv"'
            return response
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["runs"], parameters=[RUN_ID])
class RunChangesView(ApiListView):
    serializer_class = s.RunChangeOutput
    query_class = s.ChangesQuery

    def get_queryset(self):
        self.run = selectors.run_for(self.customer, self.kwargs["run_id"])
        return selectors.run_changes(self.run, op=self.request.query_params.get("op") or None)

    def paginate_queryset(self, queryset):
        # a created row's `after` is read from the table (journal.fill_created), one query a page
        page = super().paginate_queryset(queryset)
        if page is not None and any(c.digest is not None for c in page):
            fill_created(get_target(self.run.integration.target), self.run.integration.customer_id, page)
        return page

    @extend_schema(
        summary="What a run changed",
        description="Paginated, per key: `op` (created, updated, deleted), `key`, `before` (updated and deleted "
        "rows), `after` (created and updated rows); an update shows only the fields that changed. "
        "A dry run's changes are what it would change. `?format=csv` streams them all as CSV: `op`, "
        "the key's fields, `before_<field>` and `after_<field>`.",
        parameters=[
            OpenApiParameter(
                "op", OpenApiTypes.STR, enum=list(s.RunChange.Op.values), description="only this operation"
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: the CSV download"),
        ],
        responses={
            (200, MediaType.JSON): OpenApiResponse(s.RunChangeOutput(many=True)),
            (200, MediaType.CSV): OpenApiResponse(OpenApiTypes.STR, description="with ?format=csv"),
            **_errors(400, *COMMON, 404),
        },
    )
    def get(self, request, *args, **kwargs):
        query = self.strict_query(s.ChangesQuery)
        if query["format"] == "csv":
            run = selectors.run_for(self.customer, self.kwargs["run_id"])
            changes = selectors.run_changes(run, op=query.get("op") or None)
            rows = change_csv_rows(changes, integration=run.integration)
            response = StreamingHttpResponse(rows, content_type=f"{MediaType.CSV}; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="run-{self.kwargs["run_id"]}-changes.csv"'
            return response
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["runs"])
class UploadView(ApiView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Upload a file as one run",
        description="Multipart `file` (JSON array, NDJSON or CSV, by extension or `format`), optional `mode` and "
        "`dry_run`. The file is streamed to storage and split into batches by a worker; the run is "
        "completed at once (202, `queued`). At most `INTEGRATIONS_MAX_UPLOAD_BYTES` (default 1 GiB).",
        request={"multipart/form-data": s.UploadInput},
        responses={202: OpenApiResponse(s.RunOutput, description="queued"), **_errors(400, *COMMON, 404, 413, 415)},
    )
    def post(self, request, slug):
        integration = selectors.integration_for(self.customer, slug)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > conf.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD:
            raise TooLarge(
                f"upload is {length} bytes, above the limit of {conf.MAX_UPLOAD_BYTES}",
                details={"limit": conf.MAX_UPLOAD_BYTES},
            )
        body = s.UploadInput(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        run = services.upload_create(
            integration=integration,
            stream=upload,
            filename=upload.name,
            fmt=body.validated_data.get("format"),
            mode=body.validated_data.get("mode"),
            dry_run=body.validated_data["dry_run"],
        )
        return self.run_answer(run, 202)
