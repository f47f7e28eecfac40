import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection


def manage(*args, tmp_path, **env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "PSEUDONYM_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "REDIS_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    environment.update(VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage("check", tmp_path=tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        PSEUDONYM_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="annotate.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_pseudonym_key(tmp_path):
    result = manage("check", tmp_path=tmp_path, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "PSEUDONYM_KEY is not set" in result.stderr


def test_development_runs_on_embedded_defaults(tmp_path):
    result = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)",
        tmp_path=tmp_path,
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "True"]
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite defaults only")
@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    result = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.db import connection as c; cur = c.cursor(); "
        "print(cur.execute('PRAGMA journal_mode').fetchone()[0], "
        "cur.execute('PRAGMA busy_timeout').fetchone()[0])",
        tmp_path=tmp_path,
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "20000"]


def test_llm_key_falls_back_to_openai_api_key(tmp_path):
    script = "from django.conf import settings as s; print(s.LLM_API_KEY_ENV)"
    only_openai = manage(
        "shell", "-v", "0", "-c", script, tmp_path=tmp_path, DEBUG="1", OPENAI_API_KEY="k"
    )
    both = manage(
        "shell",
        "-v",
        "0",
        "-c",
        script,
        tmp_path=tmp_path,
        DEBUG="1",
        OPENAI_API_KEY="k",
        LLM_API_KEY="k2",
    )
    assert only_openai.stdout.strip() == "OPENAI_API_KEY"
    assert both.stdout.strip() == "LLM_API_KEY"
