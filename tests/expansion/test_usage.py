"""Token counts and cost say where they come from: reported, counted locally, or unknown.

The provider here is the simulated endpoint told to send no usage, as llama-cpp-python's
server does in streams, so that the real openai client runs over HTTP.
"""

import math
import socket
import time
from decimal import Decimal

import pytest

from curation.analytics import metrics
from expansion import services, usage
from expansion.checks import check_flags, trace_checks
from expansion.models import LLMEndpoint, Trace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_tokenize_routes(monkeypatch):
    monkeypatch.setattr(usage, "_routes", {})  # a port another test's simulator had


def expand(annotation, endpoint) -> Trace:
    (trace,) = services.traces_request(annotation=annotation, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded", trace.error_message
    return trace


def test_without_usage_the_tokens_are_estimated_and_so_marked(submitted, endpoint, simulator):
    simulator.configure(no_usage=True)
    trace = expand(submitted, endpoint)
    assert trace.response["usage"] is None  # verbatim: the provider sent none
    assert trace.usage_estimated and trace.usage_source == "estimate"
    prompt = "\n".join(m["content"] for m in trace.request["messages"])
    assert trace.prompt_tokens == math.ceil(len(prompt) / 4)
    assert trace.completion_tokens == math.ceil(len(trace.content) / 4)
    expected = (trace.prompt_tokens * Decimal(1) + trace.completion_tokens * Decimal(2)) / 10**6
    assert trace.cost == expected.quantize(Decimal("0.000001"))
    assert trace.checks["tokens_estimated"] is True
    assert trace.checks["too_short"] == (trace.completion_tokens < trace.checks["target_min"])
    assert usage._routes[endpoint.base_url][0] is None  # no tokenize route: not asked again soon


@pytest.mark.parametrize("route", ["/extras/tokenize", "/tokenize"])
def test_without_usage_the_servers_tokenize_route_counts_them(
    submitted, endpoint, simulator, route
):
    simulator.configure(tokenize_route=route)
    reported = expand(submitted, endpoint)
    simulator.configure(no_usage=True)
    Trace.objects.all().delete()
    counted = expand(submitted, endpoint)
    assert counted.usage_source == "tokenizer" and counted.usage_estimated
    # The simulator's tokenizer agrees with what it reports (its tokens are words).
    assert counted.completion_tokens == reported.completion_tokens
    assert counted.prompt_tokens == reported.prompt_tokens
    assert usage._routes[endpoint.base_url][0] is not None  # remembered for the next call


def test_reported_usage_is_the_providers(submitted, endpoint):
    trace = expand(submitted, endpoint)
    assert trace.usage_source == "provider" and not trace.usage_estimated
    assert trace.checks["tokens_estimated"] is False


def test_an_endpoint_without_prices_has_an_unknown_cost_not_zero(submitted, endpoint):
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(
        price_input_per_million=0, price_output_per_million=0
    )
    endpoint.refresh_from_db()
    trace = expand(submitted, endpoint)
    assert trace.completion_tokens and trace.cost is None


def test_without_any_count_the_length_checks_are_unchecked_not_too_short():
    checks = trace_checks(
        thought="Hmm.", solution="\\boxed{4}", split_ok=True, finish_reason="stop",
        completion_tokens=None, target_min=1500, target_max=3000, reference_answer="4",
        annotator_answer="4", steps=[],
    )  # fmt: skip
    assert checks["too_short"] is None and checks["too_long"] is None
    assert check_flags(checks)["flag_too_short"] is False


def test_pages_and_api_say_when_tokens_are_estimated_and_cost_unknown(
    submitted, endpoint, simulator, client_as, api_as, reviewer_user
):
    simulator.configure(no_usage=True)
    trace = expand(submitted, endpoint)
    Trace.objects.filter(pk=trace.pk).update(checks={**trace.checks, "too_short": True})
    page = client_as(reviewer_user).get(f"/traces/{trace.pk}/").content.decode()
    assert f"about {trace.prompt_tokens} in, {trace.completion_tokens} out (estimated" in page
    assert f"≈ ${trace.cost:.6f} <small>(estimated tokens)</small>" in page
    assert "(estimated)</span>" in page  # the length check rests on the estimate
    listing = client_as(reviewer_user).get("/traces/").content.decode()
    assert f"≈ {trace.completion_tokens} <small>(estimated)</small>" in listing
    assert f"≈ ${trace.cost:.4f}" in listing
    detail = api_as(reviewer_user).get(f"/api/traces/{trace.pk}/").json()
    assert detail["usage_estimated"] is True and detail["usage_source"] == "estimate"

    Trace.objects.filter(pk=trace.pk).update(cost=None)
    page = client_as(reviewer_user).get(f"/traces/{trace.pk}/").content.decode()
    assert "unknown</span>" in page and "$0.000000" not in page
    assert api_as(reviewer_user).get(f"/api/traces/{trace.pk}/").json()["cost"] is None


def test_the_schema_documents_how_tokens_were_counted(api_as, reviewer_user):
    schema = api_as(reviewer_user).get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    trace = components["ReviewedTrace"]["properties"]
    assert trace["usage_estimated"]["type"] == "boolean"
    assert trace["usage_source"]["allOf"] == [{"$ref": "#/components/schemas/UsageSourceEnum"}]
    assert set(components["UsageSourceEnum"]["enum"]) == {"provider", "tokenizer", "estimate"}
    assert trace["cost"]["nullable"] is True and "Unknown" in trace["cost"]["description"]


def test_the_analytics_cost_table_says_unknown_and_estimated(
    submitted, endpoint, simulator, client_as, admin_user
):
    simulator.configure(no_usage=True)
    trace = expand(submitted, endpoint)
    row = metrics.costs()["endpoints"][0]
    assert row["estimated"] == 1 and row["unpriced"] == 0 and row["cost"] == trace.cost
    Trace.objects.filter(pk=trace.pk).update(cost=None)
    row = metrics.costs()["endpoints"][0]
    assert row["cost"] is None and row["unpriced"] == 1
    page = client_as(admin_user).get("/analytics/", {"fresh": 1}).content.decode()
    costs = page[page.index('id="costs"') : page.index('id="profile"')]
    assert "unknown</span>" in costs and "$0.0000" not in costs


def test_a_tokenize_route_that_does_not_answer_costs_a_bounded_wait(monkeypatch):
    monkeypatch.setattr(usage, "TOKENIZE_TIMEOUT", 0.2)
    with socket.socket() as server:  # listens, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        base_url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        endpoint = LLMEndpoint(name="silent", base_url=base_url, model="m")
        started = time.monotonic()
        counted = usage.count_locally(endpoint, key="none", prompt="a" * 40, completion="b" * 9)
        assert counted == usage.Counted(10, 3, "estimate")
        assert time.monotonic() - started < 2
