from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from expansion.models import Trace


class Decision(models.TextChoices):
    APPROVE = "approve", _("Approve")
    REJECT = "reject", _("Reject")
    RETURN = "return", _("Return to the annotator")
    REEXPAND = "reexpand", _("Re-expand")
    UNDO = "undo", _("Undo")


class Reason(models.TextChoices):
    NONE = "", _("None")
    WRONG_ANSWER = "wrong_answer", _("Wrong Answer")
    LOST_STEP = "lost_step", _("Lost Step")
    INVENTED_CONTENT = "invented_content", _("Invented Content")
    LEAKAGE = "leakage", _("Leakage")
    TOO_SHORT = "too_short", _("Too Short")
    STYLE = "style", _("Style")
    OTHER = "other", _("Other")


class TraceReview(models.Model):
    """Where a trace stands in review: its claim, its approvals, its edited text."""

    # A reviewer's edit: a long trace with room to spare (the thought of a long trace is
    # about 50,000 characters), far below what would slow the page that shows it.
    EDITED_THOUGHT_MAX_CHARS = 200_000
    EDITED_SOLUTION_MAX_CHARS = 50_000

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RETURNED = "returned", _("Returned")
        REEXPANDED = "reexpanded", _("Reexpanded")

    trace = models.OneToOneField(Trace, on_delete=models.CASCADE, primary_key=True,
                                 related_name="review")  # fmt: skip
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    approvals = models.PositiveSmallIntegerField(default=0)
    edited_thought = models.TextField(blank=True, help_text="Empty: the original stands.")
    edited_solution = models.TextField(blank=True)
    rank = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1 = the best of its annotation's traces."
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "decided_at"], name="review_status_decided_idx")]

    def __str__(self) -> str:
        return f"Review of trace {self.trace_id}: {self.status}"

    @property
    def thought(self) -> str:
        return self.edited_thought or self.trace.thought

    @property
    def solution(self) -> str:
        return self.edited_solution or self.trace.solution


class ReviewDecision(models.Model):
    """One reviewer's decision on one trace. Append-only: never changed or deleted."""

    COMMENT_MAX_CHARS = 10_000

    trace = models.ForeignKey(Trace, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="review_decisions")  # fmt: skip
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    comment = models.TextField(blank=True)
    thought_before = models.TextField(blank=True)
    solution_before = models.TextField(blank=True)
    thought_after = models.TextField(blank=True)
    solution_after = models.TextField(blank=True)
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by",
        help_text="For an undo: the decision it takes back (each at most once).",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trace", "created_at", "pk"]
        indexes = [models.Index(fields=["reviewer", "created_at"], name="decision_reviewer_idx")]

    def __str__(self) -> str:
        return f"{self.decision} on trace {self.trace_id} by {self.reviewer}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Review decisions are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Review decisions are append-only and cannot be deleted.")

    @property
    def edited(self) -> bool:
        return bool(self.thought_after or self.solution_after)


class Export(models.Model):
    """One run of the dataset export, started from the UI or the API."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    SYSTEM_MAX_CHARS = 20_000  # the system prompt written into every exported record
    FILTER_MAX_CHARS = 200  # a source, subject, endpoint or model name to filter on

    format = models.CharField(max_length=16)
    style = models.CharField(max_length=20, default="think-tags")
    system = models.TextField(blank=True)
    split = models.CharField(max_length=200, default="train=1")
    seed = models.IntegerField(default=0)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    counts = models.JSONField(default=dict, blank=True)
    records = models.PositiveIntegerField(default=0, help_text="Records written, all splits.")
    files = models.JSONField(default=list, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the worker while it runs, so that a sweep can tell a dead worker's export.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.format}, {self.status})"

    @property
    def folder(self):
        return settings.VAR_DIR / "exports" / str(self.pk)

    @property
    def archive(self):
        return self.folder.with_suffix(".zip")


class Marker(models.Model):
    """A phrase whose frequency per 1,000 tokens the analytics report (e.g. "Wait").

    Matched case-insensitively as whole words over a trace's thought and solution.
    """

    phrase = models.CharField(max_length=50, unique=True)
    builtin = models.BooleanField(default=False, help_text="One of the report's markers.")
    created_at = models.DateTimeField(auto_now_add=True)
    counted_at = models.DateTimeField(
        null=True, blank=True, help_text="When every trace had been counted; empty while counting."
    )

    class Meta:
        ordering = ["-builtin", "pk"]

    def __str__(self) -> str:
        return self.phrase


class TraceProfile(models.Model):
    """Figures of one succeeded trace that the analytics aggregate, taken once when it succeeds."""

    trace = models.OneToOneField(Trace, on_delete=models.CASCADE, primary_key=True,
                                 related_name="profile")  # fmt: skip
    tokens = models.PositiveIntegerField(help_text="Completion tokens.")
    lines = models.PositiveIntegerField(help_text="Non-empty lines of thought and solution.")
    coverage = models.FloatField(null=True, blank=True, help_text="Mean step coverage, 0-1.")
    answer_match = models.BooleanField(help_text="The boxed answer matches the reference.")

    class Meta:
        indexes = [
            models.Index(fields=["tokens"], name="trace_profile_tokens_idx"),
            models.Index(fields=["lines"], name="trace_profile_lines_idx"),
        ]

    def __str__(self) -> str:
        return f"Profile of trace {self.trace_id}: {self.tokens} tokens, {self.lines} lines"


class MarkerCount(models.Model):
    """How often one marker occurs in one trace; only counts above zero are stored."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="marker_counts")
    marker = models.ForeignKey(Marker, on_delete=models.CASCADE, related_name="counts")
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["marker", "trace"], name="marker_count_uniq")
        ]
        indexes = [models.Index(fields=["trace", "marker"], name="marker_count_trace_idx")]

    def __str__(self) -> str:
        return f"{self.marker_id} x{self.count} in trace {self.trace_id}"


class StepSplit(models.Model):
    """How a trace's thought was last split into steps (on success, and after each edit)."""

    trace = models.OneToOneField(Trace, on_delete=models.CASCADE, primary_key=True,
                                 related_name="step_split")  # fmt: skip
    thought_hash = models.CharField(max_length=64, help_text="sha256 of the thought split.")
    steps = models.PositiveIntegerField()
    unsplittable = models.BooleanField(
        default=False, help_text="Fewer than 2 steps: the thought has no blank-line paragraphs."
    )
    split_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Trace {self.trace_id}: {self.steps} steps"


class TraceStep(models.Model):
    """One step of a trace's thought: a blank-line separated paragraph, by number and offsets.

    A step whose text an edit removed is retired, not deleted, so that its ratings stay with
    the text they rated; a step whose text an edit kept keeps its row and its ratings.
    """

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField(help_text="From 1, in the order of the thought.")
    start = models.PositiveIntegerField(help_text="Offset of the first character in the thought.")
    end = models.PositiveIntegerField(help_text="Offset just past the last character.")
    text = models.TextField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["trace", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["trace", "number"],
                condition=models.Q(retired_at__isnull=True),
                name="trace_step_number_uniq",
            )  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"Step {self.number} of trace {self.trace_id}"


class Correctness(models.IntegerChoices):
    """PRM800K's scale. A wrong attempt the record itself contains is still -1."""

    WRONG = -1, "-1 wrong"
    NEUTRAL = 0, "0 neutral"
    RIGHT = 1, "+1 right"


class Faithfulness(models.TextChoices):
    FAITHFUL = "faithful"
    INVENTED = "invented", "Invented (not in the record)"
    EARLY_FIX = "early_fix", "Early fix (corrected before the record does)"
    OFF_RECORD = "off_record", "Off record (another path or answer)"


class StepRating(models.Model):
    """One rater's two ratings of one step, with a note. Each rater's are kept apart and
    versioned: a save names the version it was based on, and a stale one is refused."""

    NOTE_MAX_CHARS = 2_000

    step = models.ForeignKey(TraceStep, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="step_ratings")  # fmt: skip
    correctness = models.SmallIntegerField(choices=Correctness.choices, null=True, blank=True)
    faithfulness = models.CharField(max_length=16, choices=Faithfulness.choices, blank=True)
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["step", "rater"], name="step_rating_rater_uniq")
        ]
        indexes = [models.Index(fields=["rater", "updated_at"], name="step_rating_rater_idx")]

    def __str__(self) -> str:
        return f"Rating of {self.step} by {self.rater_id}"


class LostRecordStep(models.Model):
    """A step of the record that a rater found no trace step for (``lost``)."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="lost_record_steps")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")  # fmt: skip
    record_step = models.PositiveIntegerField(help_text="The record's step number, from 1.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace", "rater", "record_step"], name="lost_record_step_uniq"
            )  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"Record step {self.record_step} of trace {self.trace_id} lost ({self.rater_id})"


from .judging import JudgeJob, JudgePrompt  # noqa: E402, F401  (they use the models above)
