"""One trace filter: the five lists of traces agree, and each date filter says what it means."""

import json
import re
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.exports import records
from expansion.models import LLMEndpoint, PromptVersion, Trace
from expansion.prompts import prompt_active
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def corpus():
    """Six succeeded traces awaiting review that differ in every filter the lists share."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    fast = LLMEndpoint.objects.create(name="fast", base_url="https://f.example/v1", model="f")
    active = prompt_active()
    other = PromptVersion.objects.create(version=99, system="S", invariants="I", content_hash="h")
    made = []
    for n, (who, level, subject, endpoint, prompt, created, finished, short) in enumerate([
        (alice, 5, "Algebra", None, active, "2026-01-05", "2026-01-20", False),
        (alice, 2, "Geometry", fast, active, "2026-01-10", "2026-01-11", True),
        (bob, 5, "Geometry", fast, other, "2026-01-15", "2026-01-16", False),
        (bob, 3, "Algebra", None, other, "2026-01-20", "2026-01-21", True),
        (alice, 5, "Algebra", fast, other, "2026-01-25", "2026-01-26", False),
    ]):  # fmt: skip
        problem = ProblemFactory(external_id=f"f{n}", level=level, subject=subject)
        annotation = AnnotationFactory(problem=problem, annotator=who, status="submitted")
        extra = {"endpoint": endpoint} if endpoint else {}
        trace = TraceFactory(annotation=annotation, prompt=prompt, flag_too_short=short, **extra)
        Trace.objects.filter(pk=trace.pk).update(created_at=day(created), finished_at=day(finished))
        made.append(trace)
    return {"alice": alice, "fast": fast, "other": other, "traces": made}


def ids_in(html: str, prefix: str) -> set[int]:
    return {int(pk) for pk in re.findall(rf'href="{prefix}(\d+)/"', html)}


def five_places(client, api, filters: dict) -> dict[str, set[int]]:
    listed = {
        "job list": ids_in(client.get("/traces/", filters).content.decode(), "/traces/"),
        "trace API": {t["id"] for t in api.get("/api/traces/", filters).json()["results"]},
        "review queue": ids_in(client.get("/review/", filters).content.decode(), "/review/"),
        "queue API": {t["id"] for t in api.get("/api/review-queue/", filters).json()["results"]},
        "analytics": ids_in(client.get("/analytics/traces/", filters).content.decode(),
                            "/traces/"),
        "export": set(records.export_queryset(status="pending", **filters)
                      .values_list("pk", flat=True)),
    }  # fmt: skip
    return listed


@pytest.mark.parametrize(
    "filters, expected",
    [
        (lambda c: {"endpoint": c["fast"].pk}, [1, 2, 4]),
        (lambda c: {"prompt": c["other"].pk}, [2, 3, 4]),
        (lambda c: {"annotator": c["alice"].pk}, [0, 1, 4]),
        (lambda c: {"level": "Level 5"}, [0, 2, 4]),
        (lambda c: {"level": "5", "subject": "Algebra"}, [0, 4]),
        (lambda c: {"created_since": "2026-01-10", "created_until": "2026-01-20"}, [1, 2]),
        (lambda c: {"finished_since": "2026-01-20"}, [0, 3, 4]),
        (lambda c: {"checks": "too_short"}, [1, 3]),
    ],
)
def test_the_five_places_list_the_same_traces_for_the_same_filters(
    corpus, client_as, api_as, reviewer_user, filters, expected
):
    filters = filters(corpus)
    listed = five_places(client_as(reviewer_user), api_as(reviewer_user), filters)
    wanted = {corpus["traces"][n].pk for n in expected}
    assert listed == dict.fromkeys(listed, wanted)


def test_since_keeps_its_old_meaning_in_each_place_and_the_new_names_say_it(
    corpus, client_as, api_as, reviewer_user
):
    client, api = client_as(reviewer_user), api_as(reviewer_user)
    traces = corpus["traces"]
    # Created on or after the 20th: traces 3 and 4; finished on or after the 20th: 0, 3, 4.
    created, finished = {traces[3].pk, traces[4].pk}, {traces[0].pk, traces[3].pk, traces[4].pk}

    def api_ids(path, **params):
        return {t["id"] for t in api.get(path, params).json()["results"]}

    def analytics(**params):
        return ids_in(client.get("/analytics/traces/", params).content.decode(), "/traces/")

    assert api_ids("/api/traces/", since="2026-01-20") == created
    assert api_ids("/api/traces/", created_since="2026-01-20") == created
    assert api_ids("/api/traces/", finished_since="2026-01-20") == finished
    assert api_ids("/api/review-queue/", since="2026-01-20") == created
    assert api_ids("/api/review-queue/", until="2026-01-20") == {t.pk for t in traces[:3]}
    assert analytics(since="2026-01-20") == finished  # analytics: finished, as it always was
    assert analytics(finished_since="2026-01-20") == finished
    assert analytics(created_since="2026-01-20") == created
    # A new name wins over the old one when both are given.
    assert api_ids("/api/traces/", since="2000-01-01", created_since="2026-01-20") == created


def exported(tmp_path, *args) -> set[int]:
    out = tmp_path / str(len(list(tmp_path.iterdir())))
    call_command("export_dataset", "--format", "raw", "--status", "pending", "--output",
                 str(out), *args, stdout=StringIO(), stderr=StringIO())  # fmt: skip
    return {json.loads(line)["trace"]["id"] for line in (out / "train.jsonl").open()}


def test_export_date_options_created_and_finished_and_the_old_since(corpus, tmp_path):
    traces = corpus["traces"]
    created = {traces[3].pk, traces[4].pk}
    assert exported(tmp_path, "--created-since", "2026-01-20") == created
    assert exported(tmp_path, "--since", "2026-01-20") == created
    assert exported(tmp_path, "--finished-since", "2026-01-20") == created | {traces[0].pk}
    assert exported(tmp_path, "--finished-until", "2026-01-12") == {traces[1].pk}
    assert exported(tmp_path, "--until", "2026-01-06") == {traces[0].pk}
    assert exported(tmp_path, "--level", "Level 5") == {traces[n].pk for n in (0, 2, 4)}
    with pytest.raises(CommandError, match="must be a date"):
        exported(tmp_path, "--finished-since", "soon")
    with pytest.raises(CommandError, match="Level: enter a whole number"):
        exported(tmp_path, "--level", "hard")


def test_a_level_is_accepted_as_level_5_on_the_problem_list_and_its_api(
    client_as, api_as, reviewer_user
):
    five, two = ProblemFactory(level=5), ProblemFactory(level=2)
    body = client_as(reviewer_user).get("/problems/", {"level": "Level 5"}).content.decode()
    assert five.external_id in body and two.external_id not in body
    results = api_as(reviewer_user).get("/api/problems/", {"level": "level 5"}).json()["results"]
    assert [p["id"] for p in results] == [five.pk]
    assert api_as(reviewer_user).get("/api/problems/", {"level": "Level x"}).status_code == 400


def test_the_schema_documents_the_new_names_and_the_old_ones_as_deprecated(api_as, admin_user):
    schema = api_as(admin_user).get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/traces/", "/api/review-queue/"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        for name in ("created_since", "created_until", "finished_since", "finished_until"):
            assert parameters[name]["schema"] == {"type": "string", "format": "date"}
        assert parameters["since"]["deprecated"] and parameters["until"]["deprecated"]
        assert parameters["level"]["schema"]["type"] == "string"
