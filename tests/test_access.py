"""Anonymous users get nothing: every URL in the URLconf is walked."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Pages that must be reachable to log in at all.
# The language picker works on the login page too (for anyone it only sets a cookie).
PUBLIC = {"/accounts/login/", "/accounts/language/", "/admin/login/", "/api/auth/token/"}
# Django's password reset flow mails a link; it leaks nothing to anonymous users.
PUBLIC_PREFIXES = ("/accounts/password_reset/", "/accounts/reset/")
PARAMETER = re.compile(r"<(?:\w+:)?\w+>")
# DRF's router writes its detail routes as regexes: ^endpoints/(?P<pk>[^/.]+)/$
REGEX_PARAMETER = re.compile(r"\(\?P<\w+>\[\^/\.\]\+\)")


def concrete_paths(resolver=None, prefix=""):
    """One example path per URL pattern, with placeholder values for its parameters."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(entry, URLResolver):
            yield from concrete_paths(entry, route)
        elif isinstance(entry, URLPattern):
            path = PARAMETER.sub("1", REGEX_PARAMETER.sub("1", route))
            if "(" in path or "\\" in path:  # a regex route that takes no placeholder
                continue
            yield "/" + path


@pytest.mark.django_db
def test_every_page_and_endpoint_refuses_anonymous_requests(client):
    paths = sorted(set(concrete_paths()))
    assert len(paths) > 10
    checked = []
    for path in paths:
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            continue
        response = client.get(path)
        if path.startswith("/api/") and not path.startswith("/api/docs/"):
            assert response.status_code == 401, path
            assert b"Authentication credentials were not provided" in response.content, path
        else:
            assert response.status_code == 302, path
            assert response["Location"].split("?")[0] in {"/accounts/login/", "/admin/login/"}, path
        checked.append(path)
    assert "/" in checked and "/problems/" in checked and "/api/problems/" in checked


@pytest.mark.django_db
def test_anonymous_writes_are_refused_too(client):
    assert client.post("/api/problems/", {}).status_code == 401
    assert client.post("/problems/").status_code == 302
