from django.conf import settings
from django.db import models


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
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        RETURNED = "returned", "Returned"

    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    steps = models.JSONField(default=list, blank=True)
    final_answer = models.TextField(blank=True)
    time_spent_seconds = models.PositiveIntegerField(default=0)
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
