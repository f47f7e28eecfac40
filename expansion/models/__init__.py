import hashlib
import json
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from annotator.models import Annotation

from ..usage import SOURCES as USAGE_SOURCES
from .jobs import JobErrorKind, JobStatus, LLMJob


# Only variables an operator listed as API keys: an admin must not be able to send the
# platform's own secrets (SECRET_KEY, DATABASE_URL, ...) or another service's credentials
# (HF_TOKEN, AWS_SECRET_ACCESS_KEY) to a server of their choosing.
def api_key_env_problem(name: str) -> str | None:
    """Why ``name`` may not be an endpoint's key variable, or None when it may.

    The one rule for the admin, the API and every call: the name is in LLM_API_KEY_NAMES
    (LLM_API_KEY, OPENAI_API_KEY and the names the operator adds), never SECRET_KEY."""
    allowed = settings.LLM_API_KEY_NAMES
    if name in allowed and name != "SECRET_KEY":
        return None
    return (
        f"{name} is not an allowed API key variable: use one of {', '.join(sorted(allowed))}, "
        "or add it to LLM_API_KEY_NAMES (comma-separated) in the environment."
    )


def validate_api_key_env(name: str) -> None:
    problem = api_key_env_problem(name)
    if problem:
        raise ValidationError(problem)


class LLMEndpoint(models.Model):
    """An OpenAI-compatible server and model. The API key stays in the environment."""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(max_length=500, help_text="e.g. https://api.openai.com/v1")
    model = models.CharField(max_length=200)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_api_key_env],
        help_text="Name of the environment variable that holds the key (never the key itself): "
        "LLM_API_KEY, OPENAI_API_KEY or one listed in LLM_API_KEY_NAMES.",
    )
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=1.0)
    max_tokens = models.PositiveIntegerField(default=8192)
    max_in_flight = models.PositiveIntegerField(
        default=8, validators=[MinValueValidator(1)],
        help_text="Requests in flight at once, shared by every worker.",
    )  # fmt: skip
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    price_output_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    timeout_seconds = models.PositiveIntegerField(default=600)
    use_batches = models.BooleanField(
        default=False,
        help_text="Send this endpoint's jobs as batches (POST /v1/files and /v1/batches, "
        "answered within 24 hours at the batch price) instead of one streamed request each.",
    )
    batch_discount_percent = models.PositiveSmallIntegerField(
        default=50, validators=[MaxValueValidator(100)],
        help_text="How much less a batched request costs than a streamed one, in percent "
        "of the prices above (OpenAI's batch API: 50).",
    )  # fmt: skip
    is_simulated = models.BooleanField(default=False)
    is_active = models.BooleanField(
        default=True, help_text="Offered when someone asks for more expansions."
    )
    supports_json_schema = models.BooleanField(
        default=True,
        help_text="Accepts response_format with a JSON schema (OpenAI, vLLM, llama.cpp). "
        "Untick for a server that refuses it: the step judge then asks for a JSON block.",
    )
    is_default = models.BooleanField(
        default=False,
        help_text="Submitted annotations are expanded here (one endpoint at most; marking "
        "one unmarks the other). Without one: the endpoint from LLM_BASE_URL and LLM_MODEL, "
        "else the built-in simulator.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM endpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_endpoint",
            )  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model}{', simulated' if self.is_simulated else ''})"

    def validate_constraints(self, exclude=None):
        # Marking this endpoint the default is allowed while another one is: endpoint_save
        # unmarks the other. The database constraint still refuses two defaults at once.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batched: bool = False) -> Decimal:
        per_million = Decimal(1_000_000)
        full = (
            Decimal(prompt_tokens) * self.price_input_per_million
            + Decimal(completion_tokens) * self.price_output_per_million
        ) / per_million
        if batched:
            return full * (100 - Decimal(self.batch_discount_percent)) / 100
        return full


class LLMBatch(models.Model):
    """One batch of jobs sent to an endpoint's batch API, from upload to ingestion.

    Its jobs (any kind: ``kind`` is the job model's label) point at it and are owned by it
    while it runs: their ``run_id`` is ``run_id`` below, so that an answer is written into
    a job only while the job is still this batch's (see ``expansion.batches``)."""

    class Status(models.TextChoices):
        # Ours, before the provider has the batch.
        PREPARING = "preparing"
        # The provider's (OpenAI's batch statuses).
        VALIDATING = "validating"
        IN_PROGRESS = "in_progress"
        FINALIZING = "finalizing"
        COMPLETED = "completed"
        EXPIRED = "expired"
        CANCELLING = "cancelling"
        CANCELLED = "cancelled"
        FAILED = "failed"

    # The provider has nothing more to say about a batch in one of these: its files are read.
    ENDED = ("completed", "expired", "cancelled", "failed")

    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=100, help_text="The jobs' model, e.g. expansion.trace.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREPARING)
    provider_id = models.CharField(max_length=200, blank=True, help_text="The provider's id.")
    input_file_id = models.CharField(max_length=200, blank=True)
    output_file_id = models.CharField(max_length=200, blank=True)
    error_file_id = models.CharField(max_length=200, blank=True)
    jobs = models.PositiveIntegerField(default=0)
    request_counts = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(
        null=True, blank=True,
        help_text="A poller has the batch until then: one worker polls and ingests it at a time.",
    )  # fmt: skip
    ingested_at = models.DateTimeField(
        null=True, blank=True, help_text="When every job of the batch had its result."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "LLM batch"
        verbose_name_plural = "LLM batches"
        indexes = [models.Index(fields=["ingested_at", "status"], name="batch_open_idx")]

    def __str__(self) -> str:
        return f"Batch {self.provider_id or self.pk} ({self.status})"

    @property
    def run_id(self) -> str:
        """The owner its jobs carry while the batch runs."""
        return f"batch-{self.pk}"


class PromptVersion(models.Model):
    """One immutable version of the expansion prompt.

    The three instruction components are separate fields so that a team can switch each
    off (leave it empty) and compare. Versions that have been used are never changed:
    editing one saves a new version (prompt_version_edit).
    """

    name = models.CharField(max_length=100, default="journey")
    version = models.PositiveIntegerField()
    system = models.TextField(help_text="Role and output structure.")
    granularity = models.TextField(blank=True)
    stepwise_pause = models.TextField(blank=True)
    explorer_perspective = models.TextField(blank=True)
    invariants = models.TextField(help_text="Rules that hold whatever the components say.")
    target_tokens_min = models.PositiveIntegerField(default=1500)
    target_tokens_max = models.PositiveIntegerField(default=3000)
    content_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(
        default=False, help_text="The version used for new submissions (one at a time)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="prompt_name_version_uniq"),
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_prompt"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    CONTENT_FIELDS = (
        "system", "granularity", "stepwise_pause", "explorer_perspective", "invariants",
        "target_tokens_min", "target_tokens_max",
    )  # fmt: skip

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from ..prompts import prompt_problems  # prompts imports this module

        problems = prompt_problems(**{field: getattr(self, field) for field in self.CONTENT_FIELDS})
        if problems:
            raise ValidationError(problems)

    def compute_hash(self) -> str:
        content = {field: getattr(self, field) for field in self.CONTENT_FIELDS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class TraceWords(models.Func):
    """The words of a trace's thought and solution, without positions, on PostgreSQL.

    NULL on other databases, where the review queue searches the texts themselves.
    """

    function = "strip"
    output_field = SearchVectorField()

    def __init__(self, **extra):
        super().__init__(SearchVector("thought", "solution", config="simple"), **extra)

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, **extra_context)


class Trace(models.Model):
    """One expansion job of one annotation version, and the trace it produced."""

    Status = JobStatus
    ErrorKind = JobErrorKind

    # The check flags, by the names filters use (review queue, analytics, exports).
    FLAGS = {
        "answer_mismatch": "flag_answer_mismatch",
        "low_coverage": "flag_low_coverage",
        "too_short": "flag_too_short",
        "leakage": "flag_leakage",
        "truncated": "flag_truncated",
        "repetition": "flag_repetition",
        "no_reflection": "flag_no_reflection",
        "format": "flag_format",
        "overthinking": "flag_overthinking",
        "language_mix": "flag_language_mix",
    }
    # Each check in words, as the pages name it (in the interface language).
    FLAG_WORDS = {
        "answer_mismatch": _("answer mismatch"),
        "low_coverage": _("low coverage"),
        "too_short": _("too short"),
        "leakage": _("leakage"),
        "truncated": _("truncated"),
        "repetition": _("repetition"),
        "no_reflection": _("no reflection"),
        "format": _("format"),
        "overthinking": _("overthinking"),
        "language_mix": _("language mix"),
    }
    # What a list of traces never shows: read only when one trace is opened.
    LONG_TEXTS = ("thought", "solution", "reasoning", "content", "request", "response", "search")

    annotation = models.ForeignKey(Annotation, on_delete=models.PROTECT, related_name="traces")
    annotation_version = models.PositiveIntegerField()
    record = models.JSONField(help_text="The annotation's steps and answer at that version.")
    prompt = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="traces")
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="traces")
    params = models.JSONField(help_text="model, temperature, top_p, max_tokens as sent.")
    sample_index = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64, unique=True)
    is_simulated = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    error_message = models.TextField(blank=True)
    run_id = models.CharField(
        max_length=32, blank=True, help_text="The worker run that owns this job right now."
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_tokens = models.PositiveIntegerField(default=0)
    # When the job's broker message was last sent, and how many were sent in all: the
    # periodic requeue re-sends a job whose message may be lost, less often each time.
    sent_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)
    # The batch the job is in (running) or was last in, when its endpoint uses batches.
    batch = models.ForeignKey(
        LLMBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    request = models.JSONField(default=dict, help_text="Messages and parameters, verbatim.")
    response = models.JSONField(default=dict, help_text="What the server answered, verbatim.")
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    thought = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    model_reported = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(
        default=False, help_text="The token counts are not the provider's (see usage_source)."
    )
    usage_source = models.CharField(
        max_length=16, blank=True, choices=USAGE_SOURCES,
        help_text="How the token counts were obtained; empty before the job has an answer.",
    )  # fmt: skip
    cost = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True,
        help_text="Unknown (null) when the endpoint has no prices or no token counts exist.",
    )  # fmt: skip
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    # The checks reviewers filter on, as columns so that the queue can use indexes.
    flag_answer_mismatch = models.BooleanField(default=False)
    flag_low_coverage = models.BooleanField(default=False)
    flag_too_short = models.BooleanField(default=False)
    flag_leakage = models.BooleanField(default=False)
    flag_truncated = models.BooleanField(default=False)
    # A default in the database too, so that rows written by SQL that predates them (bulk
    # loads, the benchmarks) are unflagged rather than refused.
    flag_repetition = models.BooleanField(default=False, db_default=False)
    flag_no_reflection = models.BooleanField(default=False, db_default=False)
    flag_format = models.BooleanField(default=False, db_default=False)
    # Against the medians of other traces (expansion.norms), refreshed as traces come in.
    flag_overthinking = models.BooleanField(default=False, db_default=False)
    flag_language_mix = models.BooleanField(default=False, db_default=False)
    # The review queue's text filter reads this (GIN index trace_search_idx), never the texts.
    search = models.GeneratedField(
        expression=TraceWords(), output_field=SearchVectorField(), db_persist=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="trace_status_created_idx"),
            models.Index(fields=["annotation", "status"], name="trace_annotation_status_idx"),
            models.Index(fields=["endpoint", "status"], name="trace_endpoint_status_idx"),
            models.Index(fields=["prompt", "status"], name="trace_prompt_status_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="trace_status_heartbeat_idx"),
            # The analytics' time windows and the drill-down list (newest first).
            models.Index(fields=["finished_at"], name="trace_finished_idx"),
            # The review queue: succeeded traces, oldest first, then every column the queue
            # filters on, so that counting it reads this index only (key columns rather than
            # INCLUDE, which SQLite lacks). Its text filter uses trace_search_idx, a GIN index
            # on `search` made on PostgreSQL only (migration 0004).
            models.Index(
                fields=[
                    "created_at",
                    "id",
                    "annotation",
                    "endpoint",
                    "prompt",
                    "flag_answer_mismatch",
                    "flag_low_coverage",
                    "flag_too_short",
                    "flag_leakage",
                    "flag_truncated",
                    "flag_repetition",
                    "flag_no_reflection",
                    "flag_format",
                    "flag_overthinking",
                    "flag_language_mix",
                ],
                name="trace_queue_idx",
                condition=models.Q(status="succeeded"),
            ),
        ]

    def __str__(self) -> str:
        return f"Trace {self.pk} of annotation {self.annotation_id} v{self.annotation_version}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def in_batch(self) -> bool:
        """Running inside a provider's batch (owned by it) rather than on a worker."""
        return self.status == self.Status.RUNNING and self.run_id.startswith("batch-")

    @property
    def flag_labels(self) -> list[str]:
        """The checks that flagged this trace, in words ("low coverage"), in FLAGS order."""
        return [str(self.FLAG_WORDS[name]) for name, field in self.FLAGS.items()
                if getattr(self, field)]  # fmt: skip


class TraceNorm(models.Model):
    """A median of succeeded traces that a relative check compares each trace with.

    ``expansion.norms.norms_refresh`` recomputes them all (periodically, and on demand)
    and sets the flags that depend on them on every trace; a trace checked meanwhile reads
    the current ones.
    """

    class Kind(models.TextChoices):
        TOKENS_BY_LEVEL = "tokens_level", "Completion tokens, by problem level"
        DENSITY_BY_PROMPT = "density_prompt", "Reflection markers per 1,000 tokens, by prompt"
        TOKENS_BY_PASS_RATE = "tokens_pass", "Completion tokens, by pass rate range"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The level ("" for problems without one), the prompt version's id, or the difficulty
    # campaign's id and the pass rate range's number ("3:4": campaign 3, the fifth range).
    key = models.CharField(max_length=20, blank=True)
    median = models.FloatField()
    traces = models.PositiveIntegerField(help_text="Succeeded traces behind the median.")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="trace_norm_uniq")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key or '-'}: {self.median} ({self.traces} traces)"


from .rollouts import ProblemDifficulty, RolloutCampaign, RolloutSample, SolvePrompt  # noqa: E402

__all__ = [
    "LLMBatch", "LLMEndpoint", "LLMJob", "JobErrorKind", "JobStatus", "ProblemDifficulty",
    "PromptVersion", "RolloutCampaign", "RolloutSample", "SolvePrompt", "Trace", "TraceNorm",
]  # fmt: skip
