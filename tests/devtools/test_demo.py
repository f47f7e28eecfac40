"""The demo command: setting up, and what it prints."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotator.models import Problem

pytestmark = pytest.mark.django_db


def test_demo_setup_is_safe_to_rerun(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = StringIO()
    call_command("demo", "--setup-only", stdout=first)
    second = StringIO()
    call_command("demo", "--setup-only", stdout=second)
    assert "500 created" in first.getvalue()
    assert "0 created, 500 already there" in second.getvalue()
    assert Problem.objects.count() == 500
    # The same printed passwords work after a re-run.
    line = next(
        line for line in second.getvalue().splitlines() if line.strip().startswith("reviewer")
    )
    username, password = line.split()[1], line.split()[3]
    assert authenticate(username=username, password=password) is not None
