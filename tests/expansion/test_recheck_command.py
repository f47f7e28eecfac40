"""`manage.py traces_recheck`: traces checked before a check existed get its flag."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from expansion.models import Trace
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db
LOOP = "Hmm, let me see. " + "Then x is four because four plus four is eight and that is it. " * 15


def test_recheck_computes_the_new_checks_from_the_stored_texts_and_keeps_the_answers():
    old = {"split_ok": True, "boxed_answer": "4", "matches_reference": False,
           "matches_annotator": True, "answer_timed_out": []}  # fmt: skip
    looping = TraceFactory(thought=LOOP, checks=old)
    clean = TraceFactory(checks=old)
    out = StringIO()
    call_command("traces_recheck", stdout=out)
    assert "Checked 2 traces again" in out.getvalue()
    looping.refresh_from_db()
    clean.refresh_from_db()
    assert looping.flag_repetition and looping.checks["repetition"][0]["count"] > 10
    assert not clean.flag_repetition and clean.checks["repetition"] == []
    # The answer comparison is kept, not made again: its flag stands.
    assert looping.checks["matches_reference"] is False and looping.flag_answer_mismatch


def test_recheck_of_one_trace_refuses_an_unknown_one():
    trace = TraceFactory(thought=LOOP, checks={"split_ok": True})
    other = TraceFactory(thought=LOOP, checks={"split_ok": True})
    call_command("traces_recheck", "--trace", str(trace.pk), stdout=StringIO())
    assert Trace.objects.get(pk=trace.pk).flag_repetition
    assert not Trace.objects.get(pk=other.pk).flag_repetition
    with pytest.raises(CommandError, match="do not exist or have not succeeded"):
        call_command("traces_recheck", "--trace", "999999", stdout=StringIO())
