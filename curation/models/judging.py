"""The step judge: versioned judge prompts and judge jobs, run by expansion's job engine."""

import hashlib
import json

from django.conf import settings
from django.db import models

from expansion.models import LLMEndpoint, LLMJob, Trace


class JudgePrompt(models.Model):
    """One immutable version of the judge's prompt; a changed wording is a new version."""

    CONTENT_FIELDS = ("system", "instructions")

    name = models.CharField(max_length=100, default="step-judge")
    version = models.PositiveIntegerField()
    system = models.TextField(help_text="The judge's role and the answer's JSON shape.")
    instructions = models.TextField(help_text="How to rate: the two questions and their scales.")
    content_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=False, help_text="Used for new judge jobs.")
    after_expansion = models.BooleanField(
        default=False,
        help_text="While active: judge every trace's steps as soon as the trace succeeds.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="judge_prompt_version_uniq"),
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="one_active_judge_prompt",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def compute_hash(self) -> str:
        content = {field: getattr(self, field) for field in self.CONTENT_FIELDS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class JudgeJob(LLMJob):
    """One judge request for one trace's steps and its answer: a rating pair and a reason
    per step, stored whole on success (``ratings``) or not at all."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="judge_jobs")
    prompt = models.ForeignKey(JudgePrompt, on_delete=models.PROTECT, related_name="jobs")
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="judge_jobs")
    params = models.JSONField(help_text="model, temperature, max_tokens as sent.")
    step_ids = models.JSONField(help_text="The trace steps judged, in order (their ids).")
    thought_hash = models.CharField(max_length=64, help_text="sha256 of the thought judged.")
    idempotency_key = models.CharField(max_length=64, unique=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    ratings = models.JSONField(
        default=list, blank=True,
        help_text="Per step: step, correctness, faithfulness, reason (on success only).",
    )  # fmt: skip
    # What the review queue filters on, from the ratings of a succeeded job.
    found_invented = models.BooleanField(default=False, help_text="A step tagged invented.")
    found_early_fix = models.BooleanField(default=False, help_text="A step tagged early_fix.")
    found_unrecorded_error = models.BooleanField(
        default=False, help_text="A -1 step the record does not contain (invented or off record)."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["trace", "status"], name="judge_job_trace_status_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="judge_job_status_hb_idx"),
        ]

    def __str__(self) -> str:
        return f"Judge job {self.pk} of trace {self.trace_id} ({self.status})"

    @staticmethod
    def findings(ratings: list[dict]) -> dict[str, bool]:
        """The queue's flags of a set of ratings."""
        tags = {rating["faithfulness"] for rating in ratings}
        unrecorded = any(r["correctness"] == -1 and r["faithfulness"] in ("invented", "off_record")
                         for r in ratings)  # fmt: skip
        return {"found_invented": "invented" in tags, "found_early_fix": "early_fix" in tags,
                "found_unrecorded_error": unrecorded}  # fmt: skip
