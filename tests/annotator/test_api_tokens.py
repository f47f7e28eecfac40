"""API tokens are stored hashed, expire, and can be revoked; clients see the same endpoint."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotator.models import ApiToken
from annotator.tokens import api_tokens_revoke

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-Pass-99"


@pytest.fixture
def carol(reviewer_user):
    reviewer_user.set_password(PASSWORD)
    reviewer_user.save()
    return reviewer_user


def _token(username="rev") -> str:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token"}
    return response.json()["token"]


def _get(token: str):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/problems/")


def test_the_secret_is_never_stored(carol):
    token = _token()
    assert _get(token).status_code == 200
    stored = ApiToken.objects.get(user=carol)
    assert token not in (stored.digest, stored.prefix)
    assert len(stored.digest) == 64 and token.startswith(stored.prefix)


def test_each_request_issues_a_new_token_and_both_work(carol):
    first, second = _token(), _token()
    assert first != second
    assert _get(first).status_code == 200 and _get(second).status_code == 200


def test_an_expired_token_is_refused_with_a_message(carol):
    token = _token()
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _get(token)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_delete_revokes_the_token_it_is_sent_with(carol):
    token, other = _token(), _token()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.delete("/api/auth/token/").status_code == 204
    response = _get(token)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert _get(other).status_code == 200
    assert APIClient().delete("/api/auth/token/").status_code == 401


def test_revoking_every_token_of_a_user(carol):
    tokens = [_token(), _token()]
    assert api_tokens_revoke(user=carol) == 2
    assert all(_get(token).status_code == 401 for token in tokens)


def test_an_unknown_token_is_refused(carol):
    assert _get("not-a-token").status_code == 401


def test_admins_revoke_tokens_in_the_admin(carol, admin_user, client):
    token = _token()
    client.force_login(admin_user)
    listing = client.get("/admin/annotator/apitoken/")
    assert listing.status_code == 200 and token[:8] in listing.content.decode()
    assert token not in listing.content.decode()
    stored = ApiToken.objects.get()
    client.post(
        "/admin/annotator/apitoken/",
        {"action": "revoke", "_selected_action": [stored.pk]},
    )
    assert _get(token).status_code == 401


def test_plain_text_tokens_from_before_are_hashed_and_keep_working(carol):
    import importlib

    from django.apps import apps
    from rest_framework.authtoken.models import Token

    old = Token.objects.create(user=carol)
    migration = importlib.import_module("annotator.migrations.0005_hash_existing_tokens")
    migration.hash_tokens(apps, None)
    assert not Token.objects.exists()
    assert ApiToken.objects.get(user=carol).digest != old.key
    assert _get(old.key).status_code == 200
