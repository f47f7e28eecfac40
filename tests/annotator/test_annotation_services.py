from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from annotator import services
from annotator.models import Annotation, AnnotationRevision, WorkspaceSettings
from annotator.roles import Role
from annotator.steps import StepsInvalid
from tests.factories import AnnotationFactory, ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD_STEPS = [
    {"kind": "attempt", "text": "Try $x=1$.", "notes": ["Substitution."]},
    {"kind": "reflection", "text": "That gives 2, not 3.", "notes": []},
    {"kind": "correction", "text": "So $x=2$.", "notes": []},
]


def annotator(name):
    return UserFactory(username=name, role=Role.ANNOTATOR)


def claimed(name="alice", **problem):
    ProblemFactory(**problem)
    return services.annotation_claim(annotator=annotator(name))


def save(annotation, steps=GOOD_STEPS, answer="2", version=None, user=None):
    return services.annotation_save(
        annotation_id=annotation.pk,
        user=user or annotation.annotator,
        base_version=annotation.version if version is None else version,
        steps=steps,
        final_answer=answer,
    )


def test_claim_leases_problems_in_order_and_never_twice():
    first, second = ProblemFactory(), ProblemFactory()
    alice, bob = annotator("alice"), annotator("bob")
    a = services.annotation_claim(annotator=alice)
    b = services.annotation_claim(annotator=bob)
    assert (a.problem, b.problem) == (first, second)
    assert a.status == "draft" and a.version == 1 and a.lease_active
    assert services.annotation_claim(annotator=annotator("carol")) is None


def test_claim_skips_problems_the_annotator_already_did_and_honours_the_target():
    WorkspaceSettings.objects.create(pk=1, annotations_per_problem=2)
    problem = ProblemFactory()
    alice, bob, carol = annotator("alice"), annotator("bob"), annotator("carol")
    assert services.annotation_claim(annotator=alice).problem == problem
    assert services.annotation_claim(annotator=alice) is None  # not the same problem again
    assert services.annotation_claim(annotator=bob).problem == problem
    assert services.annotation_claim(annotator=carol) is None  # two is the target


def test_an_expired_lease_returns_the_problem_to_the_pool():
    held = claimed()
    problem = held.problem
    assert services.annotation_claim(annotator=annotator("bob")) is None
    Annotation.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.annotation_claim(annotator=annotator("carol")).problem == problem


def test_release_returns_the_problem_at_once_and_keeps_the_draft():
    held = claimed()
    problem = held.problem
    save(held)
    services.annotation_release(annotation_id=held.pk, user=held.annotator)
    assert services.annotation_claim(annotator=annotator("bob")).problem == problem
    held.refresh_from_db()
    assert held.steps == GOOD_STEPS and not held.lease_active


def test_saving_renews_the_lease_and_keeps_every_version_as_a_revision():
    held = claimed()
    Annotation.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now())
    held.refresh_from_db()
    saved = save(held, steps=GOOD_STEPS[:1])
    saved = save(saved, steps=GOOD_STEPS)
    assert saved.version == 3
    assert saved.lease_expires_at > timezone.now() + timedelta(minutes=100)
    versions = list(held.revisions.order_by("version").values_list("version", "steps"))
    assert versions == [(2, GOOD_STEPS[:1]), (3, GOOD_STEPS)]


def test_a_save_that_changes_nothing_adds_no_version():
    held = save(claimed())
    again = save(held)
    assert again.version == held.version
    assert AnnotationRevision.objects.count() == 1


def test_a_stale_save_is_refused_and_overwrites_nothing():
    held = save(claimed())
    with pytest.raises(services.VersionConflict) as conflict:
        save(held, steps=GOOD_STEPS[:1], version=held.version - 1)
    assert conflict.value.current.version == held.version
    held.refresh_from_db()
    assert held.steps == GOOD_STEPS


def test_only_the_owner_can_save():
    held = claimed()
    with pytest.raises(PermissionDenied):
        save(held, user=annotator("mallory"))


def test_malformed_and_oversized_steps_get_specific_messages():
    held = claimed()
    with pytest.raises(StepsInvalid) as bad:
        save(
            held, steps=[{"kind": "guess", "text": "x"}, {"kind": "attempt", "text": "y" * 20_001}]
        )
    assert bad.value.messages[0].startswith("Step 1: kind must be one of attempt, reflection")
    assert bad.value.messages[1] == "Step 2: 20,001 characters; at most 20,000 per step."
    with pytest.raises(StepsInvalid, match="At most 200 steps"):
        save(held, steps=[{"kind": "attempt", "text": "x", "notes": []}] * 201)


@pytest.mark.parametrize(
    ("steps", "answer", "message"),
    [
        (GOOD_STEPS[:2], "2", "Record at least 3 steps; this one has 2."),
        ([{**s, "kind": "attempt"} for s in GOOD_STEPS], "2", "at least one reflection"),
        ([*GOOD_STEPS, {"kind": "attempt", "text": "  ", "notes": []}], "2", "Step 4 is empty."),
        (GOOD_STEPS, " ", "Give a final answer."),
    ],
)
def test_submission_rules(steps, answer, message):
    held = save(claimed(), steps=steps, answer=answer)
    with pytest.raises(services.SubmissionInvalid) as invalid:
        services.annotation_submit(annotation_id=held.pk, user=held.annotator)
    assert any(message in text for text in invalid.value.messages)
    held.refresh_from_db()
    assert held.status == "draft"


def test_submit_checks_the_answer_and_queues_the_expansion_hook_after_commit(
    django_capture_on_commit_callbacks,
):
    held = save(claimed(reference_answer=r"\frac{1}{2}"), answer="0.5")
    received = []

    def receiver(sender, annotation_id, **kwargs):
        received.append(annotation_id)

    services.annotation_submitted.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            submitted = services.annotation_submit(annotation_id=held.pk, user=held.annotator)
    finally:
        services.annotation_submitted.disconnect(receiver)
    assert submitted.status == "submitted" and submitted.answer_check == "match"
    assert submitted.lease_expires_at is None
    assert received == [held.pk]
    with pytest.raises(services.AnnotationLocked):
        save(submitted)


def test_a_mismatched_answer_needs_confirmation_and_is_recorded():
    held = save(claimed(reference_answer="7"), answer="8")
    with pytest.raises(services.AnswerMismatch):
        services.annotation_submit(annotation_id=held.pk, user=held.annotator)
    held.refresh_from_db()
    assert held.status == "draft"
    submitted = services.annotation_submit(
        annotation_id=held.pk, user=held.annotator, confirm_mismatch=True
    )
    assert submitted.answer_check == "mismatch" and submitted.mismatch_confirmed


def test_restoring_a_revision_makes_a_new_version():
    held = save(claimed(), steps=GOOD_STEPS[:1])
    held = save(held, steps=GOOD_STEPS)
    old = held.revisions.get(version=2)
    restored = services.revision_restore(revision_id=old.pk, user=UserFactory(role=Role.ADMIN))
    assert restored.version == 4 and restored.steps == GOOD_STEPS[:1]
    assert held.revisions.count() == 3


def test_time_spent_adds_up_with_a_cap_per_save():
    held = claimed()
    for elapsed in (30, 5000):
        held = services.annotation_save(
            annotation_id=held.pk, user=held.annotator, base_version=held.version,
            steps=GOOD_STEPS, final_answer="2", elapsed_seconds=elapsed,
        )  # fmt: skip
    assert held.time_spent_seconds == 30 + services.MAX_ELAPSED_PER_SAVE


def test_a_returned_annotation_keeps_its_problem_out_of_the_pool():
    AnnotationFactory(status="returned", lease_expires_at=None)
    assert services.annotation_claim(annotator=annotator("bob")) is None
