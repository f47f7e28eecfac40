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
