"""Input serializers (what a request may carry) and output serializers (what an answer holds).

Outputs take their data from the same place as the webhooks (selectors.run_representation); the
declared fields are what the OpenAPI schema shows, and a test checks the two agree."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import selectors
from ..conf import conf
from ..formats import Format
from ..ingest.journal import changed_fields
from ..models import Mode, RecordError, RunChange, SyncRun


class StrictInput(serializers.Serializer):
    """An input that refuses fields it does not know (a typo must not be silently ignored), and
    form fields or multipart parts given more than once (only one would be read)."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if hasattr(data, "getlist"):  # a form or multipart body: a part given twice (a second file) is not dropped
            repeated = sorted(name for name in data.keys() if len(data.getlist(name)) > 1)
            if repeated:
                raise serializers.ValidationError({name: ["Given more than once."] for name in repeated})
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only ("yes", 1 or "false" are refused)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


# --- inputs ------------------------------------------------------------------------------------


class RunCreateInput(StrictInput):
    """Both fields optional; unknown fields are refused."""

    mode = serializers.ChoiceField(
        choices=Mode.values,
        required=False,
        help_text="`full`: the run is the complete snapshot; default: the integration's mode",
    )
    dry_run = StrictBooleanField(required=False, default=False, help_text="validate and diff only; nothing is applied")


class RunCompleteInput(StrictInput):
    """The optional integrity check: what the sender says it sent."""

    batches = serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False, help_text="number of batches sent"
    )
    records = serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False, help_text="number of records sent"
    )


class BatchInput(serializers.Serializer):
    """The JSON batch (documentation: the view stores the raw bytes and the engine reads them)."""

    seq = serializers.IntegerField(min_value=1, max_value=2_147_483_647, help_text="1, 2, 3, ... within the run")
    records = serializers.ListField(child=serializers.DictField())  # its limit: see get_fields
    deletes = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        help_text=(
            "keys to delete, in any mode: each a string or an integer as the "
            "target's key, or an object of a composite key's fields"
        ),
    )

    def get_fields(self):
        # the limit the service enforces (conf), read when the schema is made, not at import
        fields = super().get_fields()
        limit = conf.MAX_BATCH_RECORDS
        fields["records"] = serializers.ListField(
            child=serializers.DictField(), max_length=limit, help_text=f"at most {limit:,} records"
        )
        return fields


class UploadInput(StrictInput):
    """A whole file as one run."""

    file = serializers.FileField(help_text="JSON array, NDJSON or CSV")
    format = serializers.ChoiceField(
        choices=Format.values, required=False, help_text="default: from the file name's extension"
    )
    mode = serializers.ChoiceField(choices=Mode.values, required=False)
    dry_run = serializers.BooleanField(required=False, default=False)


class ErrorsQuery(StrictInput):
    code = serializers.ChoiceField(choices=RecordError.Code.values, required=False)
    format = serializers.ChoiceField(choices=("json", "csv"), required=False, default="json")
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class ChangesQuery(StrictInput):
    op = serializers.ChoiceField(choices=RunChange.Op.values, required=False)
    format = serializers.ChoiceField(choices=("json", "csv"), required=False, default="json")
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class PageQuery(StrictInput):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class RunQuery(StrictInput):
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=60,
        help_text="long-poll: answer as soon as the run's status or progress changes, "
        "or after this many seconds (more than 0, at most 60)",
    )

    def validate_wait(self, value):
        if not value > 0:  # min_value allows 0 itself
            raise serializers.ValidationError("Must be more than 0 and at most 60 seconds.")
        return value


# --- outputs -----------------------------------------------------------------------------------


class CountsOutput(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    deleted = serializers.IntegerField()
    failed = serializers.IntegerField()


class ProgressOutput(serializers.Serializer):
    batches_total = serializers.IntegerField()
    batches_done = serializers.IntegerField()


def base_url(context) -> str | None:
    request = context.get("request") if context else None
    return request.build_absolute_uri("/") if request is not None else None


class RunOutput(serializers.Serializer):
    id = serializers.UUIDField()
    integration = serializers.CharField(help_text="the integration's slug")
    mode = serializers.ChoiceField(choices=Mode.values)
    dry_run = serializers.BooleanField()
    status = serializers.ChoiceField(choices=SyncRun.Status.values)
    source = serializers.ChoiceField(choices=SyncRun.Source.values)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = CountsOutput()
    progress = ProgressOutput()
    message = serializers.CharField(allow_blank=True, help_text="human-readable summary")
    errors_url = serializers.URLField()
    changes_url = serializers.URLField(help_text="what the run changed (SPEC 13)")

    def to_representation(self, run):
        return selectors.run_representation(run, base_url=base_url(self.context))


@extend_schema_field({"$ref": "#/components/schemas/ModeEnum"})
class ModeField(serializers.ChoiceField):
    """A mode under another field name: the same ModeEnum in the schema (drf-spectacular would name the
    same choices a second time, DefaultModeEnum, and warn in `check --deploy`), without any setting."""

    def __init__(self, **kwargs):
        super().__init__(choices=Mode.values, **kwargs)


class IntegrationOutput(serializers.Serializer):
    slug = serializers.CharField()
    target = serializers.CharField(help_text="e.g. catalog.product")
    default_mode = ModeField()
    max_error_rate = serializers.FloatField()
    max_deletes_percent = serializers.FloatField()
    created_at = serializers.DateTimeField()
    runs_url = serializers.URLField()

    def to_representation(self, integration):
        base = (base_url(self.context) or "").rstrip("/")
        return {
            "slug": integration.slug,
            "target": integration.target,
            "default_mode": integration.default_mode,
            "max_error_rate": integration.max_error_rate,
            "max_deletes_percent": integration.max_deletes_percent,
            "created_at": serializers.DateTimeField().to_representation(integration.created_at),
            "runs_url": f"{base}/api/v1/integrations/{integration.slug}/runs/",
        }


class BatchOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    received = serializers.IntegerField(help_text="records in this batch")
    status = serializers.ChoiceField(choices=["received"])

    def to_representation(self, batch):
        return {"seq": batch.seq, "received": batch.received, "status": "received"}


class RecordErrorOutput(serializers.Serializer):
    seq = serializers.IntegerField(help_text="the batch")
    index = serializers.IntegerField(help_text="0-based position in the batch's records")
    key = serializers.JSONField(
        allow_null=True,
        help_text=(
            "the record's key: a string or an integer, or an object of a composite key's fields; null when no key "
            "could be read"
        ),
    )
    code = serializers.ChoiceField(choices=RecordError.Code.values)
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="field -> its messages"
    )
    record = serializers.JSONField(allow_null=True, help_text="the record as it was received")

    def to_representation(self, error):
        return {
            "seq": error.seq,
            "index": error.index,
            "key": error.key,
            "code": error.code,
            "message": error.message,
            "fields": error.fields or {},
            "record": error.record,
        }


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable, e.g. not_found, conflict, too_large")
    message = serializers.CharField()
    details = serializers.DictField(help_text="more about the error; {} when nothing more is known")


class ErrorOutput(serializers.Serializer):
    error = ErrorDetailOutput()


class ApiRootOutput(serializers.Serializer):
    """The map the API root answers (documentation only: the view builds it)."""

    name = serializers.CharField()
    authentication = serializers.CharField()
    endpoints = serializers.DictField(
        child=serializers.CharField(), help_text="name -> URL template ({slug}, {run_id})"
    )
    schema = serializers.URLField()
    docs = serializers.URLField()
    redoc = serializers.URLField()


class RunChangeOutput(serializers.Serializer):
    op = serializers.ChoiceField(choices=RunChange.Op.values)
    key = serializers.JSONField(
        help_text="the row's key: a string, an integer, or an object of a composite key's fields"
    )
    before = serializers.JSONField(allow_null=True, help_text="the row before the run (updated: the changed fields)")
    after = serializers.JSONField(allow_null=True, help_text="the row after the run (updated: the changed fields)")

    def to_representation(self, change):
        before, after = changed_fields(change.before, change.after)
        return {"op": change.op, "key": change.key, "before": before, "after": after}
