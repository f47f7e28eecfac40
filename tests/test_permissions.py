"""The permission matrix: every page and endpoint as anonymous, annotator, reviewer and admin.

The same rules (annotator/roles.py) guard pages and API; this walks them all with GET and
checks the status each role gets. POST-only views answer 405 to a GET once past login.
"""

import pytest
from django.urls import get_resolver

from curation.models import Export
from tests.factories import TraceFactory, UserFactory
from tests.test_access import concrete_paths

pytestmark = pytest.mark.django_db

# path template -> (anonymous, annotator, reviewer, admin)
MATRIX = {
    "/": (302, 200, 200, 200),
    "/problems/": (302, 403, 200, 200),
    "/annotations/{a}/": (302, 200, 200, 200),
    "/annotations/{a}/release/": (302, 405, 405, 405),
    "/annotations/{a}/save/": (302, 405, 405, 405),
    "/annotations/{a}/steps/": (302, 405, 405, 405),
    "/annotations/{a}/submit/": (302, 405, 405, 405),
    "/annotations/next/": (302, 405, 405, 405),
    "/annotations/preview/": (302, 405, 405, 405),
    "/traces/": (302, 403, 200, 200),
    "/traces/{t}/": (302, 403, 200, 200),
    "/traces/{t}/progress/": (302, 403, 200, 200),
    "/traces/{t}/cancel/": (302, 405, 405, 405),
    "/review/": (302, 403, 200, 200),
    "/review/{t}/": (302, 403, 200, 200),
    "/review/{t}/best/": (302, 405, 405, 405),
    "/review/{t}/decide/": (302, 405, 405, 405),
    "/review/decisions/{t}/undo/": (302, 405, 405, 405),
    "/review/next/": (302, 405, 405, 405),
    "/exports/": (302, 403, 403, 200),
    "/exports/{e}/download/": (302, 403, 403, 200),
    "/analytics/": (302, 403, 200, 200),
    "/analytics/compare/": (302, 403, 200, 200),
    "/analytics/traces/": (302, 403, 200, 200),
    "/analytics/markers/": (302, 405, 405, 405),
    "/analytics/refresh/": (302, 405, 405, 405),
    "/admin/": (302, 302, 302, 200),
    "/api/": (401, 200, 200, 200),
    "/api/docs/": (302, 200, 200, 200),
    "/api/schema/": (401, 200, 200, 200),
    "/api/auth/token/": (405, 405, 405, 405),
    "/api/problems/": (401, 403, 200, 200),
    "/api/problems/{p}/": (401, 403, 200, 200),
    "/api/problems/import/": (401, 403, 403, 405),
    "/api/annotations/": (401, 200, 200, 200),
    "/api/annotations/{a}/": (401, 200, 200, 200),
    "/api/annotations/claim/": (401, 405, 403, 403),
    "/api/annotations/{a}/expand/": (401, 403, 405, 405),
    "/api/traces/": (401, 403, 200, 200),
    "/api/traces/{t}/": (401, 403, 200, 200),
    "/api/traces/{t}/review/": (401, 403, 405, 405),
    "/api/traces/{t}/cancel/": (401, 403, 405, 405),
    "/api/review-queue/": (401, 403, 200, 200),
    "/api/exports/": (401, 403, 403, 200),
    "/api/exports/{e}/": (401, 403, 403, 200),
    "/api/exports/{e}/download/": (401, 403, 403, 200),
    "/api/endpoints/": (401, 403, 403, 200),
    "/api/prompt-versions/": (401, 403, 403, 200),
    "/api/users/": (401, 403, 403, 200),
}


@pytest.fixture
def world(annotator_user, reviewer_user, admin_user, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    trace = TraceFactory(annotation__annotator=annotator_user)
    export = Export.objects.create(format="messages", status="succeeded")
    export.archive.parent.mkdir(parents=True, exist_ok=True)
    export.archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    ids = {"a": trace.annotation_id, "t": trace.pk, "e": export.pk,
           "p": trace.annotation.problem_id}  # fmt: skip
    return ids, [None, annotator_user, reviewer_user, admin_user]


def test_every_url_in_the_urlconf_is_in_the_matrix():
    known = {template.format(a=1, t=1, e=1, p=1) for template in MATRIX}
    missing = [
        path for path in concrete_paths(get_resolver())
        if not path.startswith(("/accounts/", "/admin/")) and path not in known
    ]  # fmt: skip
    assert missing == []


@pytest.mark.parametrize("template", MATRIX)
def test_each_role_gets_the_expected_status(client, world, template):
    ids, users = world
    path = template.format(**ids)
    for user, expected in zip(users, MATRIX[template], strict=True):
        client.logout()
        if user is not None:
            client.force_login(user)
        status = client.get(path).status_code
        role = user.username if user else "anonymous"
        assert status == expected, f"{role} GET {path}: {status}, expected {expected}"


def test_an_annotator_cannot_see_another_annotators_work(client, world):
    ids, _ = world
    stranger = UserFactory(username="stranger", role="annotator")
    client.force_login(stranger)
    assert client.get(f"/annotations/{ids['a']}/").status_code == 404
    assert client.get(f"/api/annotations/{ids['a']}/").status_code == 404
