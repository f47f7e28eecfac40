import time

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SETTINGS_TTL = 5.0  # seconds an admin's change may take to reach every process
_settings_cache: dict = {}

STEP_KINDS = (
    "attempt",
    "reflection",
    "association",
    "correction",
    "backtrack",
    "verification",
    "conclusion",
)
# Kinds that show the record is a journey rather than a straight path to the answer.
TURN_KINDS = ("reflection", "correction", "backtrack")


class WorkspaceSettings(models.Model):
    """Work rules an admin can change at run time (one row; defaults from the environment)."""

    annotations_per_problem = models.PositiveSmallIntegerField(
        default=settings.ANNOTATIONS_PER_PROBLEM,
        help_text="How many annotators should record each problem.",
    )
    lease_minutes = models.PositiveIntegerField(
        default=settings.ANNOTATION_LEASE_MINUTES,
        help_text="An annotator's hold on a problem lapses after this long without a save.",
    )
    min_steps = models.PositiveSmallIntegerField(
        default=3, help_text="Fewest steps a submitted annotation may have."
    )
    show_answer_after_submit = models.BooleanField(
        default=False, help_text="Show annotators the reference answer once they have submitted."
    )
    raters_per_trace = models.PositiveSmallIntegerField(
        default=1, help_text="How many reviewers rate the steps of each trace."
    )
    # A campaign's id, not a foreign key: the campaigns live in expansion, which this app
    # does not depend on (a deleted campaign leaves the order as if the field were empty).
    lease_campaign = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Next problem leases the problems this rollout campaign's model fails most "
        "first (lowest pass rate, then fewest annotations), and the overthinking check "
        "compares a trace with those of problems of a like pass rate in it. Empty: import "
        "order, and by level.",
    )  # fmt: skip
    lease_skip_solved = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="With a lease campaign: skip problems its model solved in at least this many "
        "samples. Empty: skip none.",
    )  # fmt: skip

    class Meta:
        verbose_name = verbose_name_plural = "workspace settings"

    def __str__(self) -> str:
        return "Workspace settings"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        _settings_cache.clear()

    @classmethod
    def current(cls) -> "WorkspaceSettings":
        """The settings row, read at most every few seconds per process (saves are hot)."""
        now = time.monotonic()
        cached = _settings_cache.get("row")
        if cached is None or now - _settings_cache["at"] > SETTINGS_TTL:
            cached = cls.objects.get_or_create(pk=1)[0]
            _settings_cache.update(row=cached, at=now)
        return cached


class Problem(models.Model):
    """A problem from an imported bank, identified by its source and its id there."""

    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    statement = models.TextField(help_text="Markdown with LaTeX between $...$ or \\(...\\).")
    reference_solution = models.TextField(blank=True)
    reference_answer = models.TextField(blank=True)
    subject = models.CharField(max_length=100, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="problem_source_id_uniq")
        ]
        indexes = [
            models.Index(fields=["subject", "level"], name="problem_subject_level_idx"),
            models.Index(fields=["level"], name="problem_level_idx"),
            models.Index(fields=["created_at"], name="problem_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Annotation(models.Model):
    """One annotator's record of how they solved one problem."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        RETURNED = "returned", _("Returned")

    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )

    class AnswerCheck(models.TextChoices):
        NONE = "", _("Not checked")
        MATCH = "match", _("Matches the reference")
        MISMATCH = "mismatch", _("Differs from the reference")
        UNCHECKED = "unchecked", _("Could not be compared")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    steps = models.JSONField(default=list, blank=True)
    final_answer = models.TextField(blank=True)
    time_spent_seconds = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    answer_check = models.CharField(
        max_length=16, choices=AnswerCheck.choices, default=AnswerCheck.NONE, blank=True
    )
    # "unchecked" for lack of time at submit: compared again later (annotation_recheck_answers)
    answer_timed_out = models.BooleanField(default=False)
    mismatch_confirmed = models.BooleanField(default=False)
    return_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["problem", "annotator"], name="annotation_problem_annotator_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="annotation_annotator_st_idx"),
            models.Index(fields=["problem", "status"], name="annotation_problem_st_idx"),
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk} of {self.problem} by {self.annotator}"

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.RETURNED)

    @property
    def lease_active(self) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > timezone.now()


class AnnotationRevision(models.Model):
    """Every saved version of an annotation, kept so that none is ever lost."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    steps = models.JSONField(default=list)
    final_answer = models.TextField(blank=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "version"], name="revision_annotation_version_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotation} v{self.version}"


class ApiToken(models.Model):
    """An API token, stored as the SHA-256 of its secret: the secret is shown once, to the
    client that asked for it, and a copy of the database lets nobody act as its user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="The secret's first characters.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now


class Benchmark(models.Model):
    """An evaluation set whose problems must not reach training data (AIME, MATH-500, ...)."""

    name = models.CharField(max_length=100, unique=True, help_text="e.g. aime24, math500.")
    file_name = models.CharField(max_length=255, blank=True)
    text_field = models.CharField(max_length=100, default="problem")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BenchmarkItem(models.Model):
    """One benchmark problem, with the normalized text the checks compare."""

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="items")
    line = models.PositiveIntegerField(help_text="Line of the file it came from.")
    external_id = models.CharField(max_length=255, blank=True)
    text = models.TextField()
    normalized = models.TextField()
    normalized_hash = models.CharField(max_length=64, help_text="SHA-256 of the normalized text.")

    class Meta:
        ordering = ["benchmark", "line"]
        indexes = [models.Index(fields=["normalized_hash"], name="benchmark_item_hash_idx")]

    def __str__(self) -> str:
        return f"{self.benchmark}:{self.external_id or self.line}"


class Contamination(models.Model):
    """A problem that overlaps a benchmark: the item it matches and the shared n-grams."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="contaminations")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(BenchmarkItem, on_delete=models.CASCADE, related_name="+")
    exact = models.BooleanField(help_text="The normalized texts are the same.")
    overlap = models.PositiveIntegerField(help_text="How many word n-grams the two share.")
    ngram_size = models.PositiveSmallIntegerField()
    ngrams = models.JSONField(default=list, help_text="The first shared n-grams.")
    checked_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["benchmark__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["problem", "benchmark"], name="contamination_problem_benchmark_uniq"
            )
        ]
        indexes = [models.Index(fields=["benchmark", "problem"], name="contamination_bench_idx")]

    def __str__(self) -> str:
        return f"{self.problem} in {self.benchmark}"


class NearDuplicate(models.Model):
    """A problem's place in a group of near-duplicate statements (two or more problems);
    ``group`` is the id of the group's first problem."""

    problem = models.OneToOneField(Problem, on_delete=models.CASCADE, related_name="near_duplicate")
    group = models.PositiveBigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.problem} in group {self.group}"


class ProblemSignature(models.Model):
    """The MinHash signature of a problem's statement, kept so that an import hashes only
    its incoming rows: the hash values (little-endian 32-bit integers; empty for a statement
    without a word) and the parameters they were made with. It is stale, and made again
    before use, when those differ from the settings or the problem changed after it."""

    problem = models.OneToOneField(
        Problem, on_delete=models.CASCADE, primary_key=True, related_name="signature"
    )
    params = models.CharField(max_length=100)
    hashes = models.BinaryField(blank=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"signature of {self.problem_id} ({self.params})"


class SignatureBand(models.Model):
    """One LSH band of a stored signature, hashed to a key: problems that share a key are
    the candidates to compare, found by the index rather than by reading the bank."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="+")
    key = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"band {self.key} of {self.problem_id}"


class UserLanguage(models.Model):
    """The interface language a user picked; it wins over the browser's Accept-Language
    (config.i18n.UserLanguageMiddleware). No row means: follow the browser."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interface_language"
    )
    language = models.CharField(max_length=16, choices=settings.LANGUAGES)

    def __str__(self) -> str:
        return f"{self.user} reads {self.language}"
