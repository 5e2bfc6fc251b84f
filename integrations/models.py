"""The data of the service: who sends (Customer, ApiKey), what (Integration), and each sync
(SyncRun, SyncBatch, RecordError), plus the engine's staging and the webhook deliveries."""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class Customer(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    contacts = models.JSONField(default=list, blank=True, help_text="Technical contacts (e-mails)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class ApiKeyManager(BaseAPIKeyManager):
    def assign_key(self, obj) -> str:
        raw = super().assign_key(obj)
        # the library's primary key is `<prefix>.<hash>`: it would show the stored hash in every admin
        # URL and in the hidden id input of the customer page's key rows
        obj.id = obj.prefix
        return raw


class ApiKey(AbstractAPIKey):
    """A customer's key `<prefix>.<secret>`; only the hash is stored (djangorestframework-api-key)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="api_keys")
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"


class Mode(models.TextChoices):
    FULL = "full", "Full snapshot"
    INCREMENTAL = "incremental", "Incremental"


class Integration(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="integrations")
    slug = models.SlugField(max_length=64)
    target = models.CharField(max_length=100, help_text="Registered target, e.g. catalog.product")
    default_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FULL)
    field_map = models.JSONField(
        default=dict, blank=True, help_text='Customer field -> target field, or null to drop: {"Title": "name"}'
    )
    adapter = models.CharField(max_length=100, blank=True, help_text="Registered adapter name")
    max_error_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of failed records (0..1) above which the run fails",
    )
    max_deletes_percent = models.FloatField(
        default=20.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Snapshot deletions above this share of rows (and more than 10) are held for review",
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True, help_text="whsec_...")
    contacts = models.JSONField(default=list, blank=True, help_text="E-mails; empty: the customer's contacts")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "slug"], name="integration_unique_slug"),
            models.CheckConstraint(
                condition=Q(max_error_rate__gte=0) & Q(max_error_rate__lte=1), name="integration_error_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(max_deletes_percent__gte=0) & Q(max_deletes_percent__lte=100),
                name="integration_deletes_percent_range",
            ),
        ]

    def __str__(self):
        return f"{self.customer.slug}/{self.slug}"

    @property
    def recipients(self) -> list[str]:
        return list(self.contacts or self.customer.contacts or [])


class SyncRun(models.Model):
    class Status(models.TextChoices):
        RECEIVING = "receiving"
        QUEUED = "queued"
        PROCESSING = "processing"
        NEEDS_REVIEW = "needs_review"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        API = "api"
        UPLOAD = "upload"
        ADMIN = "admin"
        COMMAND = "command"
        UNDO = "undo"  # staff undid an applied run (SPEC 13): `undoes` names it

    # What each status means, defined once: the services, the admin, the API, notify, metrics and the
    # early validation read these sets and the predicates below. Every change of status is made by
    # services/transitions.py, whose TRANSITIONS table these sets agree with (tests/engine/test_run_state.py):
    #   receiving -> queued -> processing -> succeeded | partial | failed | needs_review
    #   needs_review -> processing (approved); queued -> failed; any state before an end -> cancelled
    END_STATES = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED)
    # ended with its records applied (what an undo undoes), and ended with nothing applied (retried)
    APPLIED_STATES = (Status.SUCCEEDED, Status.PARTIAL)
    NOT_APPLIED_STATES = (Status.FAILED, Status.CANCELLED)
    # no worker moves it on: ended, or held for a staff review (a long poll answers at once)
    SETTLED_STATES = (*END_STATES, Status.NEEDS_REVIEW)
    # not ended yet: may be cancelled (the live runs of /metrics)
    UNFINISHED_STATES = (Status.RECEIVING, Status.QUEUED, Status.PROCESSING, Status.NEEDS_REVIEW)
    # its batches may still be validated: its errors and counts may still grow
    ACTIVE_STATES = (Status.RECEIVING, Status.QUEUED, Status.PROCESSING)
    # not started: its stored batches may be validated early (services/early.py)
    EARLY_STATES = (Status.RECEIVING, Status.QUEUED)
    # completed and in the workers' hands: it moves on by itself (the admin's pages follow it)
    LIVE_STATES = (Status.QUEUED, Status.PROCESSING)
    # states in which a run of an integration holds back the later runs (rule 6)
    BLOCKING_STATES = (Status.PROCESSING, Status.NEEDS_REVIEW)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVING, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of a worker")

    received = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    # the optional integrity check of `complete`
    expected_batches = models.PositiveIntegerField(null=True, blank=True)
    expected_records = models.PositiveIntegerField(null=True, blank=True)
    # an uploaded file, split into batches by a worker
    upload_name = models.CharField(max_length=500, blank=True)
    upload_format = models.CharField(max_length=16, blank=True)
    upload_filename = models.CharField(max_length=255, blank=True)
    # run creation's Idempotency-Key and a hash of the body it came with
    idempotency_key = models.CharField(max_length=200, blank=True)
    idempotency_hash = models.CharField(max_length=64, blank=True)
    # review of a held run
    guard_waived = models.BooleanField(default=False)
    reviewed_by = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # what went wrong inside a task, for staff only (never in the API or webhooks): the customer's
    # `message` says "internal error" with the reference that this text and the log carry
    error_detail = models.TextField(blank=True)
    stuck_alerted_at = models.DateTimeField(null=True, blank=True)
    # SPEC 13: the run an undo run undoes; when the retention purged this run's journal
    undoes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by")
    changes_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # staff decisions on runs (the admin's review, cancel, retry, undo and errors download): the
        # "Sync reviewers" group has it (admin/common.py)
        permissions = [("review_syncrun", "Can review sync runs (approve, reject, cancel, retry, download errors)")]
        indexes = [
            models.Index(fields=["integration", "status", "completed_at"], name="run_queue_idx"),
            models.Index(fields=["integration", "-created_at"], name="run_list_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["receiving"]) | Q(completed_at__isnull=False) | Q(status="cancelled"),
                name="run_completed_at_set",
            ),
        ]

    def __str__(self):
        return str(self.id)

    @property
    def customer(self):
        return self.integration.customer

    @property
    def counts(self) -> dict:
        return {
            "received": self.received,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": self.failed,
        }

    @property
    def can_cancel(self) -> bool:
        """Not applied yet: the sender or staff may cancel it."""
        return self.status in self.UNFINISHED_STATES

    @property
    def can_retry(self) -> bool:
        """Ended with nothing applied: staff may run its stored batches (or upload) again."""
        return self.status in self.NOT_APPLIED_STATES

    @property
    def is_held(self) -> bool:
        """Held for a staff review that may approve it (a held dry run can only be rejected)."""
        return self.status == self.Status.NEEDS_REVIEW and not self.dry_run

    @property
    def is_settled(self) -> bool:
        return self.status in self.SETTLED_STATES

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATES

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class IdempotencyKey(models.Model):
    """An Idempotency-Key of run creation, unique per customer by a database constraint: of two
    concurrent requests with one key, one inserts this row and the other fails to and answers with
    the first one's run. The 24-hour window (INTEGRATIONS_IDEMPOTENCY_HOURS) runs from the run's
    created_at; after it, the next run opened with the key takes the row over."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    run = models.OneToOneField("SyncRun", on_delete=models.CASCADE, related_name="idempotency_claim")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "key"], name="idempotency_key_unique")]

    def __str__(self):
        return f"{self.customer_id}:{self.key}"


class SyncBatch(models.Model):
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    payload = models.CharField(max_length=500, help_text="Name of the raw bytes in file storage")
    content_type = models.CharField(max_length=100, default="application/json")
    content_encoding = models.CharField(max_length=20, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    received = models.PositiveIntegerField(default=0, help_text="Records in the batch")
    deletes = models.PositiveIntegerField(default=0, help_text="Keys listed for deletion")
    created_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    # when a worker was handed this batch of a run still receiving (services/early.py): such claims
    # bound how many workers one customer's open runs may take
    validating_since = models.DateTimeField(null=True, blank=True)
    valid = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    # rows this batch wrote to the staging table (records, failed records' keys, listed deletes):
    # the apply checks they are all still there (an UNLOGGED table loses them in a crash)
    staged = models.PositiveIntegerField(default=0)
    # the lowest and highest key it staged (Target.key_span): batches whose spans do not overlap
    # share no key, and the apply skips its search for a key staged twice
    key_span = models.JSONField(null=True, blank=True)
    payload_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="batch_unique_seq"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="batch_seq_positive"),
        ]

    def __str__(self):
        return f"{self.run_id} #{self.seq}"


class RecordError(models.Model):
    class Code(models.TextChoices):
        PARSE_ERROR = "parse_error"
        MISSING_KEY = "missing_key"
        INVALID = "invalid"
        UNKNOWN_FIELD = "unknown_field"
        DUPLICATE_KEY = "duplicate_key"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="errors")
    seq = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    # the target's key as the API shows it: a string, an integer, or an object of a composite
    # key's fields; null when no key could be read
    key = models.JSONField(null=True, blank=True)
    code = models.CharField(max_length=20, choices=Code.choices)
    message = models.TextField()
    fields = models.JSONField(default=dict, blank=True)
    record = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq", "index"]
        indexes = [
            models.Index(fields=["run", "seq", "index"], name="error_position_idx"),
            models.Index(fields=["run", "code"], name="error_code_idx"),
        ]

    def __str__(self):
        return f"{self.code} at {self.seq}/{self.index}"


class RunChange(models.Model):
    """One key a run created, updated or deleted (SPEC 13), written with the run's apply.

    `before` holds the row's synced fields as they were (updated and deleted rows), `after` as the
    run left them (created and updated rows): the undo restores `before` when the row still equals
    `after` (or, for a deleted row, is still absent). Values are JSON (a decimal, a date, a UUID as
    a string; a reference as the referenced row's id)."""

    class Op(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"

    # no database constraint: a run's journal is written by INSERT ... SELECT of up to millions of
    # rows, and a deferred FK check per row cost more than the rows themselves (bench). The run
    # is deleted through the ORM (retention, customer deletion), whose CASCADE removes the rows.
    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, related_name="changes", db_constraint=False, db_index=False
    )  # the index below leads with the run
    op = models.CharField(max_length=8, choices=Op.choices)
    key = models.JSONField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # an undo: this key was left alone, changed since the undone run (before/after: that run's)
    conflict = models.BooleanField(default=False)
    # a row an applied run created, on PostgreSQL: instead of `after`, a 64-bit hash of the synced
    # values as the run wrote them (journal.pg_digest), enough for the undo to tell whether the row
    # is still as the run left it; the API reads `after` from the table (journal.fill_created)
    digest = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        # one index (each costs about a fifth of the journal's insert): pages in order, per run;
        # the ?op= filter reads the run's rows in that order
        indexes = [models.Index(fields=["run", "id"], name="change_run_idx")]

    def __str__(self):
        return f"{self.op} {self.key}"


class WebhookDelivery(models.Model):
    """One event to deliver to an integration's webhook URL; retried until it lands or gives up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    webhook_id = models.CharField(max_length=64, unique=True)
    event_timestamp = models.DateTimeField()
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]


class RunNotification(models.Model):
    """That the e-mails of one event of a run (run.failed, run.stuck, ...) were sent: a task
    delivered twice (at-least-once brokers, the sweeper) sends them once."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=40)
    recipients = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "created_at"]
        constraints = [models.UniqueConstraint(fields=["run", "event"], name="notification_unique_event")]

    def __str__(self):
        return f"{self.run_id} {self.event}"
