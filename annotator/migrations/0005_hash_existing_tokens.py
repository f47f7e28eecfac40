"""Existing plain-text API tokens become hashed ones (same secret, so clients keep working
until they expire), and the plain-text copies are deleted."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def hash_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("annotator", "ApiToken")
    now = timezone.now()
    for token in Token.objects.all():
        ApiToken.objects.get_or_create(
            digest=hashlib.sha256(token.key.encode()).hexdigest(),
            defaults={
                "user_id": token.user_id,
                "prefix": token.key[:8],
                "created_at": token.created,
                "expires_at": now + timedelta(days=settings.API_TOKEN_DAYS),
            },
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotator", "0004_api_token"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(hash_tokens, migrations.RunPython.noop)]
