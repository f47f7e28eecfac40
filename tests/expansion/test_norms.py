"""The medians of the relative checks (overthinking, no reflection): refreshed in bulk, read
by a trace when it succeeds, and the flags follow them as traces come in."""

from io import StringIO

import pytest
from django.core.management import call_command

from expansion import services
from expansion.checks import Norms
from expansion.models import PromptVersion, Trace, TraceNorm
from expansion.norms import norms_for, norms_refresh
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory

pytestmark = pytest.mark.django_db


def traces_of_level(level: int, tokens: list[int], **fields) -> list[Trace]:
    made = []
    for count in tokens:
        annotation = AnnotationFactory(problem=ProblemFactory(level=level), status="submitted")
        checks = {"reflection_count": 3, "reflection_density": 2.0, **fields.pop("checks", {})}
        made.append(TraceFactory(annotation=annotation, completion_tokens=count, checks=checks,
                                 **fields))  # fmt: skip
    return made


def flagged(field: str) -> set[int]:
    return set(Trace.objects.filter(**{field: True}).values_list("pk", flat=True))


def test_a_trace_far_above_its_levels_median_is_flagged_once_twenty_traces_are_behind_it():
    (long,) = traces_of_level(5, [3500])
    usual = traces_of_level(5, [1000] * 18)
    norms_refresh()
    assert flagged("flag_overthinking") == set()  # 19 traces: too few to judge
    usual += traces_of_level(5, [1000])
    norms_refresh()
    assert flagged("flag_overthinking") == {long.pk}
    norm = TraceNorm.objects.get(kind="tokens_level", key="5")
    assert (norm.median, norm.traces) == (1000, 20)
    # Another level's traces have their own median: as long, but usual there.
    traces_of_level(1, [3500] * 20)
    norms_refresh()
    assert flagged("flag_overthinking") == {long.pk}


def test_the_flag_follows_the_median_as_more_traces_come_in():
    (long,) = traces_of_level(3, [3500])
    traces_of_level(3, [1000] * 19)
    assert norms_refresh()["overthinking"] == 1
    traces_of_level(3, [1500] * 25)  # harder than the first traces suggested
    assert norms_refresh()["overthinking"] == 1  # the one change: cleared
    assert flagged("flag_overthinking") == set()
    assert norms_refresh() == {"overthinking": 0, "no_reflection": 0}  # nothing left to write


def test_far_below_the_prompt_versions_median_density_is_no_reflection():
    other = PromptVersion.objects.create(version=7, system="S", invariants="I", content_hash="x")
    (sparse,) = traces_of_level(2, [1000], checks={"reflection_density": 0.4})
    (fewer,) = traces_of_level(2, [1000], checks={"reflection_density": 1.0})
    (none,) = traces_of_level(2, [1000], checks={"reflection_count": 0, "reflection_density": 0})
    traces_of_level(2, [1000] * 20)  # 2.0 per 1,000 tokens: the median
    (uncounted,) = traces_of_level(2, [1000], checks={"reflection_density": 0.0})
    Trace.objects.filter(pk=uncounted.pk).update(completion_tokens=None)
    # The same density under another prompt version, with too few traces to compare.
    (elsewhere,) = traces_of_level(2, [1000], prompt=other, checks={"reflection_density": 0.4})
    norms_refresh()
    # Under a quarter of the median (0.5): flagged; half of it: not.
    assert flagged("flag_no_reflection") == {sparse.pk, none.pk}
    assert not {fewer.pk, elsewhere.pk, uncounted.pk} & flagged("flag_no_reflection")


def test_norms_for_a_trace_are_one_query(django_assert_num_queries):
    traces_of_level(4, [800] * 3)
    norms_refresh()
    prompt = Trace.objects.first().prompt_id
    with django_assert_num_queries(1):
        norms = norms_for(level=4, prompt_id=prompt)
    assert norms == Norms(tokens_median=800, tokens_traces=3, density_median=2.0,
                          density_traces=3)  # fmt: skip
    assert norms_for(level=None, prompt_id=prompt).tokens_median is None


def test_a_trace_that_succeeds_is_flagged_against_the_stored_norms(submitted, endpoint):
    level = submitted.problem.level
    TraceNorm.objects.create(kind="tokens_level", key=str(level), median=50, traces=40,
                             computed_at="2026-01-01T00:00:00Z")  # fmt: skip
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded" and trace.completion_tokens > 150
    assert trace.flag_overthinking


def test_the_refresh_command_says_what_changed():
    traces_of_level(5, [1000] * 20 + [4000])
    out = StringIO()
    call_command("traces_refresh_norms", stdout=out)
    assert "overthinking: 1 traces changed" in out.getvalue()


def test_admins_read_the_medians_in_the_admin(client_as, admin_user):
    traces_of_level(5, [1000] * 3)
    norms_refresh()
    page = client_as(admin_user).get("/admin/expansion/tracenorm/").content.decode()
    assert "Completion tokens, by problem level" in page and "1000.0" in page
