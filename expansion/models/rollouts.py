"""Rollouts: sampling a policy model on the problem bank (a campaign), one job per sample,
each sample's answer verified against the problem's reference answer, and what the samples
say of each problem (its difficulty for that campaign's model)."""

import hashlib
import json

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotator.models import Problem

from .jobs import LLMJob

SAMPLES_MAX = 256


class SolvePrompt(models.Model):
    """One immutable version of the prompt a policy model solves a problem with; a changed
    wording is a new version. ``instructions`` holds ``{problem}`` where the statement goes."""

    class ThoughtFormat(models.TextChoices):
        STILL = "still", "STILL markers (<|begin_of_thought|> ... <|end_of_solution|>)"
        THINK = "think", "<think> ... </think> tags"

    CONTENT_FIELDS = ("system", "instructions", "thought_format")

    name = models.CharField(max_length=100, default="solve")
    version = models.PositiveIntegerField()
    system = models.TextField(help_text="The model's role and the answer's shape.")
    instructions = models.TextField(help_text="The user message; {problem} is the statement.")
    thought_format = models.CharField(
        max_length=8, choices=ThoughtFormat.choices, default=ThoughtFormat.THINK
    )
    content_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="solve_prompt_version_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def compute_hash(self) -> str:
        content = {field: getattr(self, field) for field in self.CONTENT_FIELDS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class RolloutCampaign(models.Model):
    """A round of sampling: N samples of a policy endpoint per problem of a filtered set."""

    class State(models.TextChoices):
        ACTIVE = "active"  # samples are queued and run
        PAUSED = "paused"  # queued samples wait; running ones finish
        CANCELLED = "cancelled"  # queued samples are cancelled; nothing more is sent

    name = models.CharField(max_length=100, unique=True)
    endpoint = models.ForeignKey(
        "expansion.LLMEndpoint", on_delete=models.PROTECT, related_name="campaigns",
        help_text="The policy model sampled.",
    )  # fmt: skip
    prompt = models.ForeignKey(SolvePrompt, on_delete=models.PROTECT, related_name="campaigns")
    samples_per_problem = models.PositiveSmallIntegerField(
        default=16, validators=[MinValueValidator(1), MaxValueValidator(SAMPLES_MAX)]
    )
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=0.95)
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the endpoint's max_tokens."
    )
    filters = models.JSONField(
        default=dict, blank=True,
        help_text="The problem-list filters the problems were chosen by (source, subject, "
        "level, status), as given.",
    )  # fmt: skip
    problems = models.PositiveIntegerField(default=0, help_text="Problems chosen.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name


class RolloutSample(LLMJob):
    """One sample of one problem in one campaign: a job on the engine, then its verdict."""

    class Verdict(models.TextChoices):
        PENDING = "pending"  # not finished, or not verified yet
        CORRECT = "correct"
        INCORRECT = "incorrect"
        UNVERIFIED = "unverified"  # no answer math-verify can read, or it ran out of time
        NO_REFERENCE = "no_reference"  # the problem has no reference answer to check against

    campaign = models.ForeignKey(RolloutCampaign, on_delete=models.CASCADE, related_name="samples")
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="rollout_samples")
    sample_index = models.PositiveSmallIntegerField()
    endpoint = models.ForeignKey(
        "expansion.LLMEndpoint", on_delete=models.PROTECT, related_name="rollout_samples"
    )
    params = models.JSONField(help_text="model, temperature, top_p, max_tokens as sent.")
    idempotency_key = models.CharField(max_length=64, unique=True)
    is_simulated = models.BooleanField(default=False)
    batch = models.ForeignKey(
        "expansion.LLMBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    thought = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    answer = models.TextField(blank=True, help_text="The last \\boxed{} answer of the solution.")
    reference_answer = models.TextField(blank=True, help_text="The problem's, when verified.")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.PENDING)
    verified_at = models.DateTimeField(null=True, blank=True)
    checks = models.JSONField(default=dict, blank=True)
    flag_truncated = models.BooleanField(default=False)
    flag_repetition = models.BooleanField(default=False)
    flag_format = models.BooleanField(default=False)
    flag_no_reflection = models.BooleanField(default=False)

    class Meta:
        ordering = ["campaign", "problem", "sample_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "problem", "sample_index"], name="rollout_sample_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="rollout_campaign_status_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="rollout_status_hb_idx"),
            models.Index(fields=["problem", "campaign", "verdict"], name="rollout_verdict_idx"),
        ]

    def __str__(self) -> str:
        return f"Sample {self.sample_index} of problem {self.problem_id} ({self.campaign_id})"


class ProblemDifficulty(models.Model):
    """What one campaign's samples say of one problem, recomputed when a sample is verified."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="difficulties")
    campaign = models.ForeignKey(
        RolloutCampaign, on_delete=models.CASCADE, related_name="difficulties"
    )
    samples = models.PositiveIntegerField(default=0, help_text="Finished samples.")
    verified = models.PositiveIntegerField(default=0, help_text="Correct or incorrect.")
    correct = models.PositiveIntegerField(default=0)
    pass_rate = models.FloatField(null=True, blank=True, help_text="correct / verified.")
    mean_tokens_correct = models.FloatField(null=True, blank=True)
    mean_tokens_incorrect = models.FloatField(null=True, blank=True)
    majority_answer = models.TextField(blank=True)
    majority_count = models.PositiveIntegerField(default=0)
    reference_disputed = models.BooleanField(
        default=False,
        help_text="Most verified samples (>= 60%, >= 8 samples) agree on another answer.",
    )
    dispute_checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dispute_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["problem", "campaign"], name="difficulty_uniq"),
        ]
        indexes = [
            models.Index(fields=["campaign", "pass_rate"], name="difficulty_pass_rate_idx"),
        ]

    def __str__(self) -> str:
        return f"Problem {self.problem_id} in campaign {self.campaign_id}: {self.pass_rate}"
