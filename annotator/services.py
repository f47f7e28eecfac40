"""Writes on annotations: leasing problems, saving versions, submitting, releasing."""

import json
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from .answer_check import answers_compare
from .claims import claim_first
from .difficulty import lease_order
from .models import TURN_KINDS, Annotation, AnnotationRevision, Problem, WorkspaceSettings
from .steps import clean_final_answer, clean_steps

# Sent after the transaction that submitted an annotation commits; the expansion engine
# listens (annotator must not import it). Arguments: annotation_id.
annotation_submitted = Signal()

MAX_ELAPSED_PER_SAVE = 120  # seconds of work one save may add; more is an idle tab


class VersionConflict(Exception):
    """A save was based on a version that is no longer the latest."""

    def __init__(self, current: Annotation):
        super().__init__(
            f"This annotation was saved elsewhere (now version {current.version}); "
            "your changes were not saved."
        )
        self.current = current


class AnnotationLocked(Exception):
    """The annotation is not open for editing (it was submitted)."""


class SubmissionInvalid(Exception):
    def __init__(self, messages: list[str]):
        super().__init__(" ".join(messages))
        self.messages = messages


class AnswerMismatch(Exception):
    """The final answer differs from the reference; submitting needs confirmation."""


def _active_annotations(now) -> Q:
    """Annotations that keep a problem out of the pool: submitted, returned, or leased."""
    return Q(status__in=[Annotation.Status.SUBMITTED, Annotation.Status.RETURNED]) | Q(
        status=Annotation.Status.DRAFT, lease_expires_at__gt=now
    )


def _problems_needing_annotation(*, annotator, now, rules: WorkspaceSettings):
    active = (
        Annotation.objects.filter(_active_annotations(now), problem=OuterRef("pk"))
        .order_by()
        .values("problem")
        .annotate(n=Count("pk"))
        .values("n")
    )
    mine = Annotation.objects.filter(problem=OuterRef("pk"), annotator=annotator)
    problems = (
        Problem.objects.annotate(active=Coalesce(Subquery(active), 0, output_field=IntegerField()))
        .filter(active__lt=rules.annotations_per_problem)
        .filter(~Exists(mine))
        .order_by("pk")
    )
    if rules.lease_campaign is not None:
        problems = lease_order(
            problems, campaign_id=rules.lease_campaign, skip_solved=rules.lease_skip_solved
        )
    return problems


@transaction.atomic
def annotation_claim(*, annotator) -> Annotation | None:
    """Lease the next problem that still needs annotations to ``annotator``: in import order,
    or, with a lease campaign in the workspace settings, those its model fails most first.

    Concurrent claims take different problems (``claims.claim_first``); the count is checked
    again under the problem's lock, in case another claim committed since it was read.
    """
    rules = WorkspaceSettings.current()
    now = timezone.now()

    def take(problem: Problem) -> Annotation | None:
        active = Annotation.objects.filter(_active_annotations(now), problem=problem).count()
        if active >= rules.annotations_per_problem:
            return None
        if problem.annotations.filter(annotator=annotator).exists():
            return None
        return Annotation.objects.create(
            problem=problem,
            annotator=annotator,
            lease_expires_at=now + timedelta(minutes=rules.lease_minutes),
        )

    candidates = _problems_needing_annotation(annotator=annotator, now=now, rules=rules)
    return claim_first(candidates, take)


def _locked_for_owner(annotation_id: int, user) -> Annotation:
    annotation = (
        Annotation.objects.select_for_update().select_related("problem").get(pk=annotation_id)
    )
    if annotation.annotator_id != user.pk:
        raise PermissionDenied("Only the annotator who holds this annotation can change it.")
    return annotation


def _lease_expiry() -> datetime:
    return timezone.now() + timedelta(minutes=WorkspaceSettings.current().lease_minutes)


def _with_relations():
    return Annotation.objects.select_related("problem", "annotator")


def _save_refusal(annotation: Annotation, user, base_version: int) -> Exception | None:
    """Why ``user`` may not save over ``base_version`` of ``annotation`` as read, if so."""
    if annotation.annotator_id != user.pk:
        return PermissionDenied("Only the annotator who holds this annotation can change it.")
    if not annotation.is_editable:
        return AnnotationLocked("This annotation was submitted and can no longer be changed.")
    if annotation.version != base_version:
        return VersionConflict(annotation)
    return None


EDITABLE = (Annotation.Status.DRAFT, Annotation.Status.RETURNED)

# The compare-and-set and the revision in one statement (so one round trip, atomic without
# BEGIN and COMMIT): the revision is inserted only if the UPDATE matched the base version.
_SAVE_SQL = f"""\
WITH saved AS (
    UPDATE {Annotation._meta.db_table}
    SET version = %(version)s, steps = %(steps)s::jsonb, final_answer = %(final_answer)s,
        lease_expires_at = %(lease)s, time_spent_seconds = time_spent_seconds + %(spent)s,
        updated_at = %(now)s
    WHERE id = %(id)s AND annotator_id = %(user)s AND version = %(base)s
        AND status IN (%(draft)s, %(returned)s)
    RETURNING id, version, steps, final_answer
)
INSERT INTO {AnnotationRevision._meta.db_table}
    (annotation_id, version, steps, final_answer, saved_by_id, created_at)
SELECT id, version, steps, final_answer, %(user)s, %(now)s FROM saved
"""  # noqa: S608 (the table names come from the models; every value is a parameter)


def _write_version_postgresql(pk: int, user, base: int, spent: int, values: dict) -> int:
    """Rows written by ``_SAVE_SQL``: 1, or 0 when ``base`` was not the latest version."""
    params = {"id": pk, "user": user.pk, "base": base, "spent": spent, "now": values["updated_at"]}
    params.update(version=values["version"], final_answer=values["final_answer"])
    params.update(draft=Annotation.Status.DRAFT.value, returned=Annotation.Status.RETURNED.value)
    params.update(steps=json.dumps(values["steps"]), lease=values["lease_expires_at"])
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_SQL, params)
        return cursor.rowcount


def annotation_save(
    *,
    annotation_id: int,
    user,
    base_version: int,
    steps: list,
    final_answer: str,
    elapsed_seconds: int = 0,
    loaded: Annotation | None = None,
) -> Annotation:
    """Save a new version if ``base_version`` is the latest; renew the lease.

    Raises StepsInvalid for a malformed record, VersionConflict when another save came
    first, AnnotationLocked once submitted. A save that changes nothing adds no revision.
    ``loaded`` is the annotation as the caller has just read it (with its problem and
    annotator), which spares a read; the answer is that object, updated.

    Autosave is the hottest write: no row lock is taken. The record read is the one of its
    version (only a version bump changes it), so it tells whether anything changed; then one
    UPDATE ... WHERE version = base_version checks the version, bumps it, writes the record
    and renews the lease. If another save or a submission came in between, that UPDATE
    matches nothing and the row is read again to say why.
    """
    steps, final_answer = clean_steps(steps), clean_final_answer(final_answer)
    annotation = _with_relations().get(pk=annotation_id) if loaded is None else loaded
    refusal = _save_refusal(annotation, user, base_version)
    if refusal:
        raise refusal
    now = timezone.now()
    spent = max(0, min(int(elapsed_seconds or 0), MAX_ELAPSED_PER_SAVE))
    values = {
        "lease_expires_at": _lease_expiry(),
        "time_spent_seconds": F("time_spent_seconds") + spent,
        "updated_at": now,
    }
    changed = steps != annotation.steps or final_answer != annotation.final_answer
    if changed:
        values.update(version=base_version + 1, steps=steps, final_answer=final_answer)
    latest = Annotation.objects.filter(
        pk=annotation.pk, annotator=user, version=base_version, status__in=EDITABLE
    )
    if not changed:
        matched = latest.update(**values)
    elif connection.vendor == "postgresql":
        matched = _write_version_postgresql(annotation.pk, user, base_version, spent, values)
    else:
        with transaction.atomic():
            matched = latest.update(**values)
            if matched:
                AnnotationRevision.objects.create(
                    annotation=annotation,
                    version=base_version + 1,
                    steps=steps,
                    final_answer=final_answer,
                    saved_by=user,
                )
    if not matched:
        current = _with_relations().get(pk=annotation.pk)
        raise _save_refusal(current, user, base_version) or VersionConflict(current)
    values["time_spent_seconds"] = annotation.time_spent_seconds + spent
    for field, value in values.items():
        setattr(annotation, field, value)
    return annotation


@transaction.atomic
def annotation_release(*, annotation_id: int, user) -> Annotation:
    """Give the problem back to the pool now; the draft stays with its annotator."""
    annotation = _locked_for_owner(annotation_id, user)
    if annotation.status == Annotation.Status.DRAFT:
        annotation.lease_expires_at = timezone.now()
        annotation.save(update_fields=["lease_expires_at", "updated_at"])
    return annotation


def submission_errors(annotation: Annotation, *, min_steps: int) -> list[str]:
    steps = annotation.steps
    errors = []
    if len(steps) < min_steps:
        errors.append(gettext("Record at least %(min)s steps; this one has %(count)s.")
                      % {"min": min_steps, "count": len(steps)})  # fmt: skip
    if not any(step["kind"] in TURN_KINDS for step in steps):
        errors.append(
            gettext(
                "Include at least one reflection, correction or backtrack: the record should "
                "show the journey, including where your thinking changed and why."
            )
        )
    empty = [str(number) for number, step in enumerate(steps, start=1) if not step["text"].strip()]
    if empty:
        errors.append(ngettext("Step %(steps)s is empty.", "Steps %(steps)s are empty.", len(empty))
                      % {"steps": ", ".join(empty)})  # fmt: skip
    if not annotation.final_answer.strip():
        errors.append(gettext("Give a final answer."))
    return errors


ANSWER_CHECKS = {
    True: Annotation.AnswerCheck.MATCH,
    False: Annotation.AnswerCheck.MISMATCH,
    None: Annotation.AnswerCheck.UNCHECKED,
}
RECHECK_BATCH = 20  # annotations per run: each comparison may take its whole time bound


def annotations_recheck_answers(*, limit: int = RECHECK_BATCH) -> int:
    """Compare again the final answers of up to ``limit`` submitted annotations whose check
    ran out of time at submit; how many now have a result. A mismatch found now stays
    unconfirmed by the annotator, which is what reviewers see."""
    resolved = 0
    waiting = Annotation.objects.filter(answer_timed_out=True).exclude(
        status=Annotation.Status.DRAFT
    )
    for annotation in waiting.select_related("problem").order_by("pk")[:limit]:
        comparison = answers_compare(annotation.problem.reference_answer, annotation.final_answer)
        # Only the fields written here, and only if the answer compared is still the one saved.
        Annotation.objects.filter(pk=annotation.pk, version=annotation.version).update(
            answer_check=ANSWER_CHECKS[comparison.match], answer_timed_out=comparison.timed_out
        )
        resolved += not comparison.timed_out
    return resolved


@transaction.atomic
def annotation_submit(*, annotation_id: int, user, confirm_mismatch: bool = False) -> Annotation:
    """Submit the latest saved version, or raise SubmissionInvalid / AnswerMismatch."""
    annotation = _locked_for_owner(annotation_id, user)
    if not annotation.is_editable:
        raise AnnotationLocked("This annotation was already submitted.")
    errors = submission_errors(annotation, min_steps=WorkspaceSettings.current().min_steps)
    if errors:
        raise SubmissionInvalid(errors)
    comparison = answers_compare(annotation.problem.reference_answer, annotation.final_answer)
    match = comparison.match
    annotation.answer_check = ANSWER_CHECKS[match]
    annotation.answer_timed_out = comparison.timed_out
    if match is False and not confirm_mismatch:
        raise AnswerMismatch(
            gettext(
                "Your final answer does not match the reference answer. Check your work; if "
                "you are sure, confirm to submit it as it is (reviewers will see the mismatch)."
            )
        )
    annotation.mismatch_confirmed = match is False
    annotation.status = Annotation.Status.SUBMITTED
    annotation.submitted_at = timezone.now()
    annotation.lease_expires_at = None
    annotation.return_comment = ""
    annotation.save()
    # A listener that fails must not fail a submission that is committed already:
    # send_robust logs its error, and the expansion's periodic sweep queues what it missed.
    transaction.on_commit(
        lambda: annotation_submitted.send_robust(sender=Annotation, annotation_id=annotation.pk)
    )
    return annotation


@transaction.atomic
def revision_restore(*, revision_id: int, user) -> Annotation:
    """Make an old revision the latest version again (as a new version; nothing is lost)."""
    revision = AnnotationRevision.objects.select_related("annotation").get(pk=revision_id)
    annotation = Annotation.objects.select_for_update().get(pk=revision.annotation_id)
    annotation.version += 1
    annotation.steps = revision.steps
    annotation.final_answer = revision.final_answer
    annotation.save()
    AnnotationRevision.objects.create(
        annotation=annotation,
        version=annotation.version,
        steps=revision.steps,
        final_answer=revision.final_answer,
        saved_by=user,
    )
    return annotation


@transaction.atomic
def annotation_return(*, annotation_id: int, comment: str) -> Annotation:
    """Reopen a submitted annotation for its annotator, with the reviewer's comment."""
    annotation = Annotation.objects.select_for_update().get(pk=annotation_id)
    if annotation.status != Annotation.Status.SUBMITTED:
        raise AnnotationLocked("Only a submitted annotation can be returned.")
    annotation.status = Annotation.Status.RETURNED
    annotation.return_comment = comment
    annotation.save(update_fields=["status", "return_comment", "updated_at"])
    return annotation
