"""The periodic requeue: a job whose broker message was lost is sent again within two
minutes, a job waiting behind a backlog is sent again rarely, and a submission whose
expansions were never queued is found by the sweep."""

import pytest
from django.db.models import F
from django.utils import timezone

from expansion import services, tasks
from expansion.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    messages = []
    monkeypatch.setattr(tasks.expand_trace, "delay", messages.append)
    return messages


def minutes_pass(minutes: float) -> None:
    """Every recorded time of every job moves back, as if that much time went by."""
    delta = timezone.timedelta(minutes=minutes)
    Trace.objects.update(created_at=F("created_at") - delta, sent_at=F("sent_at") - delta)


def test_a_queued_job_whose_message_was_lost_is_sent_again_within_two_minutes(
    submitted, endpoint, sent, settings
):
    settings.EXPANSION_RESEND_AFTER_SECONDS = 90
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint, samples=1)
    assert tasks.requeue_stalled_traces() == 0  # its message has just been sent
    minutes_pass(1)
    assert tasks.requeue_stalled_traces() == 0
    minutes_pass(1)  # the broker lost it (Redis restarted without persistence)
    assert tasks.requeue_stalled_traces() == 1
    assert trace.pk in sent
    trace.refresh_from_db()
    assert trace.sends == 2 and trace.status == "queued"


def test_a_job_waiting_an_hour_in_a_backlog_is_sent_again_a_handful_of_times(
    submitted, endpoint, sent, settings
):
    settings.EXPANSION_RESEND_AFTER_SECONDS = 90
    settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS = 900
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint, samples=1)
    counted = 0
    for _ in range(60):  # beat's minute, for an hour, with every worker busy elsewhere
        minutes_pass(1)
        counted += tasks.requeue_stalled_traces()
    trace.refresh_from_db()
    # 90 s, then 3, 6, 12 and 15 minutes apart: 6 messages in the hour, not 45.
    assert counted == len(sent) == trace.sends - 1
    assert 4 <= len(sent) <= 7, len(sent)


def test_a_running_job_whose_worker_died_is_sent_once_per_stall(
    submitted, endpoint, sent, settings
):
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint, samples=1)
    claimed = timezone.now() - timezone.timedelta(minutes=10)
    Trace.objects.filter(pk=trace.pk).update(
        status="running",
        run_id="dead",
        started_at=claimed,
        heartbeat_at=claimed,
        sent_at=claimed - timezone.timedelta(seconds=1),
    )
    assert tasks.requeue_stalled_traces() == 1  # at once: nothing was sent since the claim
    assert tasks.requeue_stalled_traces() == 0  # not again every minute
    assert sent == [trace.pk]


def test_a_submission_whose_receiver_failed_is_queued_by_the_sweep(
    annotator_user, endpoint, settings, sent, monkeypatch, django_capture_on_commit_callbacks
):
    from annotator import services as annotator_services
    from tests.expansion.conftest import STEPS
    from tests.factories import ProblemFactory

    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    settings.LLM_SIMULATOR_URL = endpoint.base_url
    settings.EXPANSION_SAMPLES = 2

    def broken(**kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(services, "traces_request", broken)
    ProblemFactory()
    draft = annotator_services.annotation_claim(annotator=annotator_user)
    annotator_services.annotation_save(
        annotation_id=draft.pk, user=annotator_user, base_version=1, steps=STEPS, final_answer="4"
    )
    with django_capture_on_commit_callbacks(execute=True):
        submitted = annotator_services.annotation_submit(
            annotation_id=draft.pk, user=annotator_user, confirm_mismatch=True
        )
    assert submitted.status == "submitted" and not Trace.objects.filter(annotation=draft)
    monkeypatch.undo()
    monkeypatch.setattr(tasks.expand_trace, "delay", sent.append)
    settings.EXPANSION_SAMPLES = 2
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.queue_missing_expansions() == 2
    traces = Trace.objects.filter(annotation=draft, annotation_version=submitted.version)
    assert sorted(sent) == sorted(t.pk for t in traces) and len(sent) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.queue_missing_expansions() == 0  # nothing is queued twice
