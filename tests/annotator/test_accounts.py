from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from annotator.roles import Role, has_role

pytestmark = pytest.mark.django_db


def test_role_groups_exist_after_migrating():
    assert set(Group.objects.values_list("name", flat=True)) >= {"annotator", "reviewer", "admin"}


def test_create_user_with_a_role():
    call_command(
        "create_user",
        "alice",
        "--role",
        "reviewer",
        "--password",
        "s3cret-Pass-99",
        stdout=StringIO(),
    )
    user = authenticate(username="alice", password="s3cret-Pass-99")
    assert user is not None
    assert has_role(user, Role.REVIEWER) and not has_role(user, Role.ADMIN)
    assert not user.is_staff


def test_create_admin_can_use_the_django_admin(client):
    call_command(
        "create_user", "root", "--role", "admin", "--password", "s3cret-Pass-99", stdout=StringIO()
    )
    client.login(username="root", password="s3cret-Pass-99")
    assert client.get("/admin/annotator/problem/").status_code == 200


def test_create_user_prompts_for_the_password(monkeypatch):
    answers = iter(["s3cret-Pass-99", "s3cret-Pass-99"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    call_command("create_user", "bob", "--role", "annotator", stdout=StringIO())
    assert authenticate(username="bob", password="s3cret-Pass-99") is not None


def test_create_user_rejects_mismatched_or_weak_passwords(monkeypatch):
    answers = iter(["s3cret-Pass-99", "other-Pass-99"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(CommandError, match="differ"):
        call_command("create_user", "bob", "--role", "annotator")
    with pytest.raises(CommandError, match="Password rejected"):
        call_command("create_user", "bob", "--role", "annotator", "--password", "123")


def test_api_token_for_username_and_password():
    call_command(
        "create_user",
        "carol",
        "--role",
        "reviewer",
        "--password",
        "s3cret-Pass-99",
        stdout=StringIO(),
    )
    api = APIClient()
    assert (
        api.post("/api/auth/token/", {"username": "carol", "password": "nope"}).status_code == 400
    )
    token = api.post(
        "/api/auth/token/", {"username": "carol", "password": "s3cret-Pass-99"}
    ).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/problems/").status_code == 200


def test_login_page_logs_in_and_logout_logs_out(client, reviewer_user):
    response = client.post(
        "/accounts/login/", {"username": "rev", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_login_attempts_are_rate_limited(client, reviewer_user):
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": "rev", "password": "wrong"})
        assert response.status_code == 200
    blocked = client.post(
        "/accounts/login/", {"username": "rev", "password": "correct-horse-battery"}
    )
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.content.decode()


def _fail_logins(client, times, **headers):
    for _ in range(times):
        client.post("/accounts/login/", {"username": "nobody", "password": "wrong"}, **headers)


def _blocked(client, **headers):
    response = client.post(
        "/accounts/login/", {"username": "someone-else", "password": "wrong"}, **headers
    )
    return response.status_code == 429


def test_behind_a_trusted_proxy_login_failures_count_per_forwarded_client(client, settings):
    settings.TRUST_X_FORWARDED_FOR = True
    _fail_logins(client, 10, HTTP_X_FORWARDED_FOR="203.0.113.7")
    # Everyone shares the proxy's REMOTE_ADDR; another client behind it is not locked out.
    assert not _blocked(client, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert _blocked(client, HTTP_X_FORWARDED_FOR="203.0.113.7")
    # The proxy appends the address it saw: a client cannot escape by writing its own entry.
    assert _blocked(client, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7")


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(client, settings):
    settings.TRUST_X_FORWARDED_FOR = False
    _fail_logins(client, 10, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert _blocked(client, HTTP_X_FORWARDED_FOR="198.51.100.2")


def test_user_update_changes_only_what_is_given(api_as):
    from annotator.accounts import user_create_or_update, user_update

    user = user_create_or_update(username="dana", role=Role.ADMIN, password="s3cret-Pass-99")
    assert user.is_staff and has_role(user, Role.ADMIN)
    user_update(user=user, role=Role.REVIEWER)
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser and has_role(user, Role.REVIEWER)
    assert authenticate(username="dana", password="s3cret-Pass-99") is not None
    admin = user_create_or_update(username="root", role=Role.ADMIN, password="s3cret-Pass-99")
    api = api_as(admin)
    changed = api.patch(f"/api/users/{user.pk}/", {"is_active": False, "password": "n3w-Pass-77"},
                        format="json")  # fmt: skip
    assert changed.status_code == 200 and changed.json()["roles"] == ["reviewer"]
    assert authenticate(username="dana", password="n3w-Pass-77") is None  # no longer active
    user.refresh_from_db()
    assert not user.is_active and user.check_password("n3w-Pass-77")
