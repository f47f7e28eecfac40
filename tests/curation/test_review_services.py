import threading

import pytest
from django.db import connection

from annotator.roles import Role
from curation import services
from curation.models import ReviewDecision, TraceReview
from curation.selectors import QueuePaginator, review_queue
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trace():
    return TraceFactory()


def decide(trace, reviewer, decision="approve", **kwargs):
    return services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision=decision, **kwargs)


def test_approve_makes_a_trace_approved_and_records_who(trace, reviewer_user):
    record = decide(trace, reviewer_user)
    assert record.reviewer == reviewer_user and record.decision == "approve"
    assert trace.review.status == "approved" and trace.review.approvals == 1
    assert list(review_queue()) == []


def test_the_number_of_approvals_is_configurable(trace, reviewer_user, settings):
    settings.REVIEW_APPROVALS_REQUIRED = 2
    decide(trace, reviewer_user)
    assert TraceReview.objects.get(trace=trace).status == "pending"
    with pytest.raises(services.ReviewRefused, match="already approved"):
        decide(trace, reviewer_user)
    decide(trace, UserFactory(username="second", role=Role.REVIEWER))
    assert TraceReview.objects.get(trace=trace).status == "approved"


def test_edit_then_approve_keeps_the_original(trace, reviewer_user):
    original = trace.thought
    record = decide(trace, reviewer_user, edited_thought="A cleaner thought.")
    review = TraceReview.objects.get(trace=trace)
    assert review.thought == "A cleaner thought." and review.trace.thought == original
    assert record.thought_before == original and record.thought_after == "A cleaner thought."


def test_reject_needs_a_reason(trace, reviewer_user):
    with pytest.raises(services.ReviewRefused, match="reason"):
        decide(trace, reviewer_user, "reject")
    decide(trace, reviewer_user, "reject", reason="lost_step", comment="Step 2 is gone.")
    assert TraceReview.objects.get(trace=trace).status == "rejected"


def test_return_reopens_the_annotation_with_the_comment(trace, reviewer_user):
    with pytest.raises(services.ReviewRefused, match="comment"):
        decide(trace, reviewer_user, "return")
    decide(trace, reviewer_user, "return", comment="Say why you switched methods.")
    trace.annotation.refresh_from_db()
    assert trace.annotation.status == "returned"
    assert trace.annotation.return_comment == "Say why you switched methods."


def test_reexpand_queues_a_new_job(trace, reviewer_user, django_capture_on_commit_callbacks):
    from expansion.models import Trace

    decide(trace, reviewer_user, "reexpand", endpoint=trace.endpoint)
    assert Trace.objects.filter(annotation=trace.annotation).count() == 2
    assert TraceReview.objects.get(trace=trace).status == "reexpanded"


def test_no_one_reviews_their_own_annotation(trace):
    author = trace.annotation.annotator
    author.groups.add(*UserFactory(username="r2", role=Role.REVIEWER).groups.all())
    with pytest.raises(services.ReviewRefused, match="own annotation"):
        decide(trace, author)
    assert trace not in review_queue(reviewer=author)


def test_decisions_are_append_only(trace, reviewer_user):
    record = decide(trace, reviewer_user, "reject", reason="style")
    record.comment = "changed"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(services.ReviewRefused, match="already decided"):
        decide(trace, reviewer_user)
    assert ReviewDecision.objects.count() == 1


def test_a_claimed_trace_is_not_offered_to_another_reviewer(reviewer_user):
    first, second = TraceFactory(), TraceFactory()
    other = UserFactory(username="other", role=Role.REVIEWER)
    assert services.review_next(reviewer=reviewer_user) == first
    assert services.review_next(reviewer=other) == second
    with pytest.raises(services.ReviewRefused, match="is reviewing"):
        decide(first, other)
    assert services.review_next(reviewer=UserFactory(username="third", role=Role.REVIEWER)) is None


def test_queue_filters(reviewer_user):
    flagged = TraceFactory(flag_answer_mismatch=True, thought="Wait, no.")
    TraceFactory(thought="Straight through.")
    assert list(review_queue(checks=["answer_mismatch"])) == [flagged]
    assert list(review_queue(q="wait")) == [flagged]
    assert review_queue().count() == 2


def test_the_text_filter_searches_thought_and_solution_in_any_case(reviewer_user):
    in_thought = TraceFactory(thought="Hmm. WAIT: 3+3 is 6.", solution="So x = 4.")
    in_solution = TraceFactory(thought="Straight through.", solution="Wait, x = 4.")
    neither = TraceFactory(thought="Straight through.", solution="So x = 4.")
    assert list(review_queue(q="wait")) == [in_thought, in_solution]
    assert list(review_queue(q="straight through")) == [in_solution, neither]
    assert list(review_queue(q="zebra")) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text search: PostgreSQL")
def test_on_postgresql_the_text_filter_matches_words_through_the_gin_index(reviewer_user):
    word = TraceFactory(thought="Wait, 3+3 is 6.")
    TraceFactory(thought="Awaiting nothing.")  # "wait" inside another word: no match
    traces = review_queue(q="wait")
    assert list(traces) == [word]
    assert '"expansion_trace"."search" @@' in str(traces.query)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'trace_search_idx'")
        (definition,) = cursor.fetchone()
    assert "USING gin (search) WHERE ((status)::text = 'succeeded'::text)" in definition


def test_a_page_reads_its_traces_by_id_in_queue_order(reviewer_user):
    traces = TraceFactory.create_batch(5)
    paginator = QueuePaginator(review_queue(reviewer=reviewer_user), 2)
    assert paginator.count == 5
    assert list(paginator.page(2)) == traces[2:4]
    assert list(paginator.page(3)) == traces[4:]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_concurrent_next_gives_each_reviewer_a_different_trace():
    traces = TraceFactory.create_batch(6)
    reviewers = [UserFactory(username=f"rv{n}", role=Role.REVIEWER) for n in range(6)]
    start, taken = threading.Barrier(6), []

    def take(user):
        start.wait()
        taken.append(services.review_next(reviewer=user).pk)
        connection.close()

    threads = [threading.Thread(target=take, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken) == sorted(t.pk for t in traces)


def test_picking_the_best_of_several_traces(reviewer_user):
    best = TraceFactory()
    other = TraceFactory(annotation=best.annotation)
    services.review_pick_best(trace_id=best.pk, reviewer=reviewer_user)
    assert TraceReview.objects.get(trace=best).rank == 1
    assert TraceReview.objects.get(trace=other).rank == 2
    services.review_pick_best(trace_id=other.pk, reviewer=reviewer_user)
    assert TraceReview.objects.get(trace=other).rank == 1
    assert TraceReview.objects.get(trace=best).rank == 2
