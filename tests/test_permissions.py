"""The permission matrix: every page and endpoint, every method it accepts, as anonymous,
annotator, reviewer and admin.

The same rules (annotator/roles.py) guard pages and API. Each accepted method is sent with a
body that would succeed for a permitted role, so that a refusal comes from the role check and
not from a missing field or a 405; the methods a route accepts are read from its view
(require_http_methods, DRF's actions) and must be the ones the matrix declares.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve

from annotator.models import Annotation
from curation import services as curation
from curation.models import Export
from expansion.models import LLMEndpoint, SolvePrompt
from expansion.prompts import prompt_active
from expansion.rollouts.prompts import DEFAULT_PROMPT
from tests.factories import (
    DifficultyFactory,
    ProblemFactory,
    SampleFactory,
    TraceFactory,
    UserFactory,
)
from tests.test_access import concrete_paths

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "annotator", "reviewer", "admin")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PASSWORD = "correct-horse-battery"

# path template -> {method: (anonymous, annotator, reviewer, admin)}. {a} is a submitted
# annotation of the annotator with its trace {t}; {d} the annotator's draft; {r} a reviewer's
# decision on another trace; {e} an export; {p} a problem; {n} an endpoint; {v} a prompt
# version; {u} a user; {c} a rollout campaign whose samples of {p} dispute its reference
# answer; {s} its solve prompt.
MATRIX = {
    "/": {"GET": (302, 200, 200, 200)},
    "/problems/": {"GET": (302, 403, 200, 200)},
    "/problems/{p}/": {"GET": (302, 403, 200, 200)},
    "/problems/{p}/campaigns/{c}/samples/": {"GET": (302, 403, 200, 200)},
    "/problems/{p}/campaigns/{c}/dispute-checked/": {"POST": (302, 403, 403, 302)},
    "/annotations/{a}/": {"GET": (302, 200, 200, 200)},
    "/annotations/{d}/release/": {"POST": (302, 302, 403, 403)},
    "/annotations/{d}/save/": {"POST": (302, 302, 403, 403)},
    "/annotations/{d}/steps/": {"POST": (302, 302, 403, 403)},
    "/annotations/{d}/submit/": {"POST": (302, 302, 403, 403)},
    "/annotations/next/": {"POST": (302, 302, 403, 403)},
    "/annotations/preview/": {"POST": (302, 200, 200, 200)},
    "/traces/": {"GET": (302, 403, 200, 200)},
    "/traces/{t}/": {"GET": (302, 403, 200, 200)},
    "/traces/{t}/progress/": {"GET": (302, 403, 200, 200)},
    "/traces/{t}/cancel/": {"POST": (302, 403, 302, 302)},
    "/review/": {"GET": (302, 403, 200, 200)},
    "/review/{t}/": {"GET": (302, 403, 200, 200)},
    "/review/{t}/best/": {"POST": (302, 403, 302, 302)},
    "/review/{t}/steps/1/rate/": {"POST": (302, 403, 302, 302)},
    "/review/{t}/record/1/lost/": {"POST": (302, 403, 302, 302)},
    "/review/{t}/judge/": {"POST": (302, 403, 302, 302)},
    "/review/{t}/judge/accept/": {"POST": (302, 403, 302, 302)},
    "/review/{t}/judge/state/": {"GET": (302, 403, 200, 200)},
    "/review/{t}/decide/": {"POST": (302, 403, 302, 302)},
    "/review/decisions/{r}/undo/": {"POST": (302, 403, 302, 400)},
    "/review/next/": {"POST": (302, 403, 302, 302)},
    "/exports/": {"GET": (302, 403, 403, 200), "POST": (302, 403, 403, 302)},
    "/exports/{e}/download/": {"GET": (302, 403, 403, 200)},
    "/analytics/": {"GET": (302, 403, 200, 200)},
    "/analytics/compare/": {"GET": (302, 403, 200, 200)},
    "/analytics/agreement/": {"GET": (302, 403, 200, 200)},
    "/analytics/traces/": {"GET": (302, 403, 200, 200)},
    "/analytics/campaigns/": {"GET": (302, 403, 200, 200)},
    "/analytics/campaigns/{c}/samples/": {"GET": (302, 403, 200, 200)},
    "/analytics/markers/": {"POST": (302, 403, 403, 302)},
    "/analytics/refresh/": {"POST": (302, 403, 403, 302)},
    "/admin/": {"GET": (302, 302, 302, 200)},
    "/api/": {"GET": (401, 200, 200, 200)},
    "/api/docs/": {"GET": (302, 200, 200, 200)},
    "/api/schema/": {"GET": (401, 200, 200, 200)},
    "/api/auth/token/": {"POST": (200, 200, 200, 200), "DELETE": (401, 401, 401, 401)},
    "/api/problems/": {"GET": (401, 403, 200, 200)},
    "/api/problems/{p}/": {"GET": (401, 403, 200, 200)},
    "/api/problems/import/": {"POST": (401, 403, 403, 200)},
    "/api/annotations/": {"GET": (401, 200, 200, 200)},
    "/api/annotations/{d}/": {"GET": (401, 200, 200, 200), "PATCH": (401, 200, 403, 403)},
    "/api/annotations/{d}/release/": {"POST": (401, 200, 403, 403)},
    "/api/annotations/{d}/submit/": {"POST": (401, 200, 403, 403)},
    "/api/annotations/claim/": {"POST": (401, 204, 403, 403)},
    "/api/annotations/{a}/expand/": {"POST": (401, 403, 202, 202)},
    "/api/traces/": {"GET": (401, 403, 200, 200)},
    "/api/traces/{t}/": {"GET": (401, 403, 200, 200)},
    "/api/traces/{t}/decisions/": {"GET": (401, 403, 200, 200)},
    "/api/traces/{t}/review/": {"POST": (401, 403, 201, 201)},
    "/api/traces/{t}/steps/": {"GET": (401, 403, 200, 200)},
    "/api/traces/{t}/steps/1/rating/": {"PUT": (401, 403, 200, 200)},
    "/api/traces/{t}/judge/": {"POST": (401, 403, 202, 202)},
    "/api/judge-runs/": {"POST": (401, 403, 202, 202)},
    "/api/traces/{t}/cancel/": {"POST": (401, 403, 409, 409)},
    "/api/review-queue/": {"GET": (401, 403, 200, 200)},
    "/api/exports/": {"GET": (401, 403, 403, 200), "POST": (401, 403, 403, 202)},
    "/api/exports/{e}/": {"GET": (401, 403, 403, 200)},
    "/api/exports/{e}/download/": {"GET": (401, 403, 403, 200)},
    "/api/endpoints/": {"GET": (401, 403, 403, 200), "POST": (401, 403, 403, 201)},
    "/api/endpoints/{n}/": {"GET": (401, 403, 403, 200), "PATCH": (401, 403, 403, 200)},
    "/api/prompt-versions/": {"GET": (401, 403, 403, 200), "POST": (401, 403, 403, 201)},
    "/api/prompt-versions/{v}/": {"GET": (401, 403, 403, 200)},
    "/api/users/": {"GET": (401, 403, 403, 200), "POST": (401, 403, 403, 201)},
    "/api/solve-prompts/": {"GET": (401, 403, 403, 200), "POST": (401, 403, 403, 201)},
    "/api/solve-prompts/{s}/": {"GET": (401, 403, 403, 200)},
    "/api/rollout-campaigns/": {"GET": (401, 403, 200, 200), "POST": (401, 403, 403, 201)},
    "/api/rollout-campaigns/{c}/": {"GET": (401, 403, 200, 200)},
    "/api/rollout-campaigns/{c}/samples/": {"GET": (401, 403, 200, 200)},
    **{
        f"/api/rollout-campaigns/{{c}}/{steer}/": {"POST": (401, 403, 403, 200)}
        for steer in ("pause", "resume", "cancel", "run")
    },
    "/api/users/{u}/": {"GET": (401, 403, 403, 200), "PATCH": (401, 403, 403, 200)},
}

STEPS = [
    {"kind": "attempt", "text": "Guess x equals three since three plus three", "notes": []},
    {"kind": "reflection", "text": "Three plus three gives six, not eight", "notes": []},
    {"kind": "correction", "text": "Choose four: four plus four equals eight", "notes": []},
]


def _editor_form(draft: Annotation) -> dict:
    return {"version": draft.version, "kind": [s["kind"] for s in STEPS],
            "text": [s["text"] for s in STEPS], "notes": ["" for _ in STEPS],
            "final_answer": "4", "op": "add"}  # fmt: skip


def _bodies(world) -> dict:
    """(template, method) -> a body that succeeds for a permitted role; JSON for the API."""
    prompt = prompt_active()
    return {
        **{
            (f"/annotations/{{d}}/{name}/", "POST"): _editor_form(world["draft"])
            for name in ("save", "steps", "submit")
        },  # fmt: skip
        ("/annotations/preview/", "POST"): {"text": "Let $x=4$."},
        ("/review/{t}/decide/", "POST"): {"decision": "approve"},
        ("/review/{t}/steps/1/rate/", "POST"): {"correctness": "1", "version": "0"},
        ("/exports/", "POST"): {"format": "messages"},
        ("/analytics/markers/", "POST"): {"phrase": "Let me see"},
        ("/api/auth/token/", "POST"): {"username": "ann", "password": PASSWORD},
        ("/api/problems/import/", "POST"): {
            "source": "matrix",
            "file": SimpleUploadedFile(
                "p.jsonl",
                json.dumps({"problem": "1+1?", "answer": "2", "unique_id": "m/1"}).encode(),
            ),
        },  # fmt: skip
        ("/api/annotations/{d}/", "PATCH"): {
            "version": world["draft"].version,
            "steps": STEPS,
            "final_answer": "4",
        },  # fmt: skip
        ("/api/traces/{t}/review/", "POST"): {"decision": "approve"},
        ("/api/traces/{t}/steps/1/rating/", "PUT"): {"correctness": 1, "version": 0},
        ("/api/exports/", "POST"): {"format": "messages"},
        ("/api/endpoints/", "POST"): {
            "name": "new",
            "base_url": "https://a.example/v1",
            "model": "m",
        },  # fmt: skip
        ("/api/endpoints/{n}/", "PATCH"): {"model": "m2"},
        ("/api/prompt-versions/", "POST"): {
            field: getattr(prompt, field) for field in ("name", *prompt.CONTENT_FIELDS)
        },
        ("/api/solve-prompts/", "POST"): {
            "name": "matrix",
            **{field: DEFAULT_PROMPT[field] for field in SolvePrompt.CONTENT_FIELDS},
        },
        ("/api/rollout-campaigns/", "POST"): {
            "name": "matrix",
            "endpoint": world["ids"]["n"],
            "samples_per_problem": 1,
        },
        ("/api/users/", "POST"): {
            "username": "newbie",
            "role": "annotator",
            "password": "a-Long-pass-123",
        },  # fmt: skip
        ("/api/users/{u}/", "PATCH"): {"role": "reviewer"},
    }


@pytest.fixture
def world(annotator_user, reviewer_user, admin_user, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    trace = TraceFactory(annotation__annotator=annotator_user, annotation__steps=STEPS)
    decided = TraceFactory()
    record = curation.review_decide(trace_id=decided.pk, reviewer=reviewer_user,
                                    decision="approve")  # fmt: skip
    draft = Annotation.objects.create(problem=ProblemFactory(reference_answer="4"),
                                      annotator=annotator_user,
                                      steps=STEPS, final_answer="4")  # fmt: skip
    export = Export.objects.create(format="messages", status="succeeded")
    export.archive.parent.mkdir(parents=True, exist_ok=True)
    export.archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    endpoint = LLMEndpoint.objects.create(name="e", base_url="https://e.example/v1", model="m")
    problem = trace.annotation.problem
    disputed = DifficultyFactory(problem=problem, correct=2, reference_disputed=True)
    SampleFactory(campaign=disputed.campaign, problem=problem)
    ids = {"a": trace.annotation_id, "t": trace.pk, "d": draft.pk, "r": record.pk,
           "e": export.pk, "p": trace.annotation.problem_id, "n": endpoint.pk,
           "v": prompt_active().pk, "u": UserFactory(role="annotator").pk,
           "c": disputed.campaign_id, "s": disputed.campaign.prompt_id}  # fmt: skip
    users = dict(zip(ROLES, [None, annotator_user, reviewer_user, admin_user], strict=True))
    return {"ids": ids, "users": users, "draft": draft}


def _send(client, method: str, path: str, body: dict | None):
    body = body or {}
    if method == "GET":
        return client.get(path)
    if path.startswith("/api/") and not any(hasattr(value, "read") for value in body.values()):
        return client.generic(method, path, json.dumps(body), "application/json")
    if method == "POST":
        return client.post(path, body)  # a form, or a multipart upload
    return client.generic(method, path)


def _as(client, world, role):
    client.logout()
    if world["users"][role] is not None:
        client.force_login(world["users"][role])
    return client


def accepted_methods(view) -> set[str] | None:
    """The methods a view accepts: DRF's actions or handlers, or the list of
    require_http_methods (require_GET, require_POST); None for a view that takes any."""
    cls = getattr(view, "cls", None)
    if cls is not None:
        handlers = getattr(view, "actions", None) or {m: m for m in cls.http_method_names
                                                      if hasattr(cls, m)}  # fmt: skip
        allowed = {m for m in handlers if m in cls.http_method_names}
        return {m.upper() for m in allowed} - {"HEAD", "OPTIONS"}
    while view is not None:
        names = getattr(view, "__code__", None) and view.__code__.co_freevars
        if names and "request_method_list" in names:
            return set(view.__closure__[names.index("request_method_list")].cell_contents)
        view = getattr(view, "__wrapped__", None)
    return None


def _known_paths() -> dict[str, str]:
    return {template.format(a=1, t=1, d=1, r=1, e=1, p=1, n=1, v=1, u=1, c=1, s=1): template
            for template in MATRIX}  # fmt: skip


def test_every_url_in_the_urlconf_is_in_the_matrix():
    known = _known_paths()
    missing = [
        path for path in concrete_paths()
        if not path.startswith(("/accounts/", "/admin/")) and path not in known
    ]  # fmt: skip
    assert missing == []


@pytest.mark.parametrize("path, template", _known_paths().items())
def test_the_matrix_declares_the_methods_each_view_accepts(path, template):
    accepted = accepted_methods(resolve(path).func)
    if accepted is None:  # the Django admin: a site of its own, checked by Django
        assert template == "/admin/"
        return
    assert accepted - {"HEAD"} == set(MATRIX[template]), path
    # A declared method reaches the view's role checks: nobody is sent away with a 405.
    assert all(405 not in statuses for statuses in MATRIX[template].values()), path


CASES = [(template, method, role) for template, methods in MATRIX.items()
         for method in methods for role in ROLES]  # fmt: skip


@pytest.mark.parametrize("template, method, role", CASES)
def test_each_role_gets_the_expected_status(client, world, template, method, role):
    path = template.format(**world["ids"])
    body = _bodies(world).get((template, method))
    response = _send(_as(client, world, role), method, path, body)
    expected = MATRIX[template][method][ROLES.index(role)]
    assert response.status_code == expected, f"{role} {method} {path}: {response.status_code}"
    if role == "anonymous" and expected == 302:
        assert response["Location"].split("?")[0] in {"/accounts/login/", "/admin/login/"}


@pytest.mark.parametrize("template", [t for t in MATRIX if t != "/admin/"])
def test_a_method_a_route_does_not_accept_is_refused_for_everyone(client, world, template):
    path = template.format(**world["ids"])
    for method in set(METHODS) - set(MATRIX[template]):
        for role in ROLES:
            status = _send(_as(client, world, role), method, path, {}).status_code
            # 429: the token endpoint's throttle counts before the method is looked at.
            assert status in {302, 401, 403, 405, 429}, f"{role} {method} {path}: {status}"


def test_an_annotator_cannot_see_another_annotators_work(client, world):
    stranger = UserFactory(username="stranger", role="annotator")
    client.force_login(stranger)
    annotation = world["ids"]["a"]
    assert client.get(f"/annotations/{annotation}/").status_code == 404
    assert client.get(f"/api/annotations/{annotation}/").status_code == 404
    assert client.post(f"/annotations/{world['ids']['d']}/release/").status_code == 404
