"""Admins choose which endpoint expands submitted annotations; every page says when it is
the simulator."""

import pytest

from annotator import services as annotator_services
from expansion.models import LLMEndpoint, Trace
from expansion.tasks import expand_trace
from tests.expansion.conftest import STEPS
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db
BANNER = "expansions come from the built-in simulated endpoint"


@pytest.fixture
def submit(django_capture_on_commit_callbacks, monkeypatch):
    """Submit an annotation and return the job it queued (left in the database only)."""
    monkeypatch.setattr(expand_trace, "delay", lambda trace_id: None)

    def submit(user) -> Trace:
        ProblemFactory(reference_answer="4")
        draft = annotator_services.annotation_claim(annotator=user)
        annotator_services.annotation_save(
            annotation_id=draft.pk, user=user, base_version=1, steps=STEPS, final_answer="4"
        )
        with django_capture_on_commit_callbacks(execute=True):
            annotation = annotator_services.annotation_submit(annotation_id=draft.pk, user=user)
        return Trace.objects.get(annotation=annotation)

    return submit


def test_submissions_are_expanded_on_the_endpoint_an_admin_marked_default(
    api_as, admin_user, annotator_user, client_as, settings, submit
):
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.EXPANSION_SAMPLES = "", "", 1
    page = client_as(annotator_user).get("/")
    assert BANNER in page.content.decode()  # nothing configured: the simulator

    api = api_as(admin_user)
    body = {"base_url": "https://api.deepseek.com/v1", "model": "deepseek-reasoner",
            "api_key_env": "OPENAI_API_KEY", "is_default": True}  # fmt: skip
    first = api.post("/api/endpoints/", {**body, "name": "first"}, format="json")
    second = api.post("/api/endpoints/", {**body, "name": "second"}, format="json")
    assert first.status_code == second.status_code == 201, second.json()
    assert api.get(f"/api/endpoints/{first.json()['id']}/").json()["is_default"] is False
    assert submit(annotator_user).endpoint.name == "second"
    assert BANNER not in client_as(annotator_user).get("/").content.decode()

    # Switched off, the default no longer takes submissions: back to the simulator.
    LLMEndpoint.objects.filter(name="second").update(is_active=False)
    trace = submit(annotator_user)
    assert trace.endpoint.is_simulated and trace.is_simulated
    assert BANNER in client_as(annotator_user).get("/").content.decode()


def test_the_banner_stays_off_pages_for_visitors_not_logged_in(client, settings):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and BANNER not in page.content.decode()


def test_the_environment_endpoint_is_stored_once_and_then_only_read(
    annotator_user, client_as, settings, submit
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.LLM_BASE_URL, settings.LLM_MODEL = "https://api.example.com/v1", "reasoner-1"
    settings.EXPANSION_SAMPLES = 1
    first = submit(annotator_user)
    assert (first.endpoint.name, first.endpoint.model) == ("default", "reasoner-1")
    table = LLMEndpoint._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        second = submit(annotator_user)
        page = client_as(annotator_user).get("/")
    sql = [query["sql"] for query in queries.captured_queries]
    writes = [q for q in sql if q.startswith(("INSERT", "UPDATE")) and f'"{table}"' in q]
    assert writes == [] and second.endpoint == first.endpoint
    assert BANNER not in page.content.decode()
    # The environment changed: the stored endpoint follows it, once.
    settings.LLM_MODEL = "reasoner-2"
    assert submit(annotator_user).endpoint.model == "reasoner-2"
    assert LLMEndpoint.objects.filter(name="default").count() == 1


def test_marking_an_endpoint_default_through_a_patch_unmarks_the_other(api_as, admin_user):
    first = LLMEndpoint.objects.create(name="a", base_url="https://a/v1", model="m",
                                       is_default=True)  # fmt: skip
    second = LLMEndpoint.objects.create(name="b", base_url="https://b/v1", model="m")
    patched = api_as(admin_user).patch(f"/api/endpoints/{second.pk}/", {"is_default": True},
                                       format="json")  # fmt: skip
    assert patched.status_code == 200 and patched.json()["is_default"] is True
    first.refresh_from_db()
    assert not first.is_default
    assert list(LLMEndpoint.objects.filter(is_default=True)) == [second]


def test_under_debug_the_banner_names_the_endpoint_in_use(annotator_user, client_as, settings):
    # What `make demo LLM=local` sets: the local llama.cpp server instead of the simulator.
    settings.DEBUG = True
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:8793/v1", "smollm2-135m-local"
    page = client_as(annotator_user).get("/").content.decode()
    assert "Expansions come from the model smollm2-135m-local at http://127.0.0.1:8793/v1" in page
    assert BANNER not in page
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    page = client_as(annotator_user).get("/").content.decode()
    assert BANNER in page and "Expansions come from the model" not in page
    settings.DEBUG = False  # production pages do not name the endpoint
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:8793/v1", "smollm2-135m-local"
    assert "Expansions come from" not in client_as(annotator_user).get("/").content.decode()
