"""The fields every kind of LLM job has, in one place: its lifecycle (what ``expansion.jobs``
claims, heartbeats, retries and finishes) and what was paid for (the request and answer
verbatim, tokens, cost). A kind (a trace, a judge job, a rollout sample) adds what it is about
and what its answer means."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..usage import SOURCES as USAGE_SOURCES


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class JobErrorKind(models.TextChoices):
    NONE = "", "None"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    TRUNCATED = "truncated"
    EMPTY = "empty"
    INVALID_OUTPUT = "invalid_output"


class LLMJob(models.Model):
    """An abstract job row: the engine's lifecycle fields and the fields of the answer."""

    Status = JobStatus
    ErrorKind = JobErrorKind

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    error_message = models.TextField(blank=True)
    run_id = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_tokens = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)

    request = models.JSONField(default=dict, help_text="Messages and parameters, verbatim.")
    response = models.JSONField(default=dict, help_text="What the server answered, verbatim.")
    content = models.TextField(blank=True, help_text="The answer's text, kept when invalid.")
    reasoning = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    model_reported = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    usage_source = models.CharField(max_length=16, blank=True, choices=USAGE_SOURCES)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)
