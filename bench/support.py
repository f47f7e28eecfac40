"""What the benchmarks share: a fresh PostgreSQL database with Django set up and migrated."""

import os
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432/"


def fresh_database(name: str) -> str:
    """Drop database ``name`` if it exists, create it empty; its URL."""
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return PG + name


def django_on_fresh_database(name: str, *, var_prefix: str) -> None:
    """Django (development settings, a VAR_DIR of its own) on a fresh, migrated ``name``."""
    os.environ.update(DATABASE_URL=fresh_database(name), DEBUG="1",
                      DJANGO_SETTINGS_MODULE="config.settings",
                      VAR_DIR=tempfile.mkdtemp(prefix=var_prefix))  # fmt: skip
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
