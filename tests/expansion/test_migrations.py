"""Migrations keep existing data valid."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import AnnotationFactory


@pytest.fixture(autouse=True)
def _back_to_the_latest():
    """Each test here migrates back: the tests after it need every migration applied."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_one_active_prompt_keeps_the_newest_of_several_active_versions():
    before, after = (
        [("expansion", "0008_unchecked_answers_are_no_mismatch")],
        [("expansion", "0009_one_active_prompt")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    PromptVersion = executor.loader.project_state(before).apps.get_model(
        "expansion", "PromptVersion"
    )
    fields = {"system": "s", "invariants": "i", "content_hash": "h", "is_active": True}
    old, newest = (PromptVersion.objects.create(version=n, **fields) for n in (1, 2))
    PromptVersion.objects.create(version=3, **{**fields, "is_active": False})
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    PromptVersion = executor.loader.project_state(after).apps.get_model(
        "expansion", "PromptVersion"
    )
    assert list(PromptVersion.objects.filter(is_active=True).values_list("pk", flat=True)) == [
        newest.pk
    ]
    assert PromptVersion.objects.count() == 3 and old.pk != newest.pk


@pytest.mark.django_db(transaction=True)
def test_earlier_traces_keep_provider_counts_and_lose_a_cost_that_was_never_priced():
    before, after = (
        [("expansion", "0011_trace_sends")],
        [("expansion", "0012_trace_usage_source")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    annotation = AnnotationFactory()
    Endpoint, Prompt = (
        apps.get_model("expansion", name) for name in ("LLMEndpoint", "PromptVersion")
    )
    Trace = apps.get_model("expansion", "Trace")
    prompt = Prompt.objects.create(version=1, system="s", invariants="i", content_hash="h")
    free = Endpoint.objects.create(name="free", base_url="http://x/v1", model="m")
    paid = Endpoint.objects.create(
        name="paid", base_url="http://y/v1", model="m", price_input_per_million=1
    )
    common = {"annotation_id": annotation.pk, "annotation_version": 1, "record": {},
              "prompt": prompt, "params": {}}  # fmt: skip
    counted = Trace.objects.create(idempotency_key="a", endpoint=free, completion_tokens=10,
                                   prompt_tokens=5, cost=0, **common)  # fmt: skip
    priced = Trace.objects.create(idempotency_key="b", endpoint=paid, completion_tokens=10,
                                  prompt_tokens=5, cost="0.000005", **common)  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    Trace = executor.loader.project_state(after).apps.get_model("expansion", "Trace")
    counted, priced = Trace.objects.get(pk=counted.pk), Trace.objects.get(pk=priced.pk)
    assert counted.usage_source == "provider" and not counted.usage_estimated
    assert counted.cost is None  # no prices: unknown, not $0
    assert str(priced.cost) == "0.000005"


@pytest.mark.django_db(transaction=True)
def test_the_new_flags_are_set_on_existing_traces_where_their_checks_already_tell():
    from expansion.models import Trace
    from tests.factories import TraceFactory

    unsplit = TraceFactory(checks={"split_ok": False, "boxed_answer": "4", "reflection_count": 2})
    unboxed = TraceFactory(checks={"split_ok": True, "boxed_answer": None, "reflection_count": 1})
    flat = TraceFactory(checks={"split_ok": True, "boxed_answer": "4", "reflection_count": 0})
    clean = TraceFactory(checks={"split_ok": True, "boxed_answer": "4", "reflection_count": 3})
    failed = TraceFactory(status="failed", checks={})
    executor = MigrationExecutor(connection)
    executor.migrate([("curation", "0006_export_heartbeat"),
                      ("expansion", "0013_batches")])  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("expansion", "0014_trace_checks_degenerate_language")])
    flags = {t.pk: (t.flag_format, t.flag_no_reflection) for t in Trace.objects.all()}
    assert flags == {unsplit.pk: (True, False), unboxed.pk: (True, False),
                     flat.pk: (False, True), clean.pk: (False, False),
                     failed.pk: (False, False)}  # fmt: skip
