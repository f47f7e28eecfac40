"""API tokens: issued on username and password, kept hashed, expiring, revocable."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .models import ApiToken

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _digest(secret: str) -> str:
    # The secret is 32 random bytes: a fast hash is enough, nothing can be guessed from it.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user) -> str:
    """A new token for the user; the secret is returned once and never stored."""
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    ApiToken.objects.create(
        user=user,
        digest=_digest(secret),
        prefix=secret[:8],
        created_at=now,
        expires_at=now + timedelta(days=settings.API_TOKEN_DAYS),
    )
    return secret


def api_tokens_revoke(*, user=None, secret: str | None = None) -> int:
    """Revoke one token (by its secret) or every token of a user; returns how many."""
    tokens = ApiToken.objects.filter(revoked_at__isnull=True)
    if secret is not None:
        tokens = tokens.filter(digest=_digest(secret))
    if user is not None:
        tokens = tokens.filter(user=user)
    return tokens.update(revoked_at=timezone.now())


class HashedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <secret>``, checked against the stored digests."""

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=_digest(key)).first()
        now = timezone.now()
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked; ask for a new one.")
        if token.expires_at <= now:
            raise AuthenticationFailed("This token has expired; ask for a new one.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
