import pytest
from rest_framework.test import APIClient

from annotator.roles import Role
from tests.factories import UserFactory


@pytest.fixture
def annotator_user(db):
    return UserFactory(username="ann", role=Role.ANNOTATOR)


@pytest.fixture
def reviewer_user(db):
    return UserFactory(username="rev", role=Role.REVIEWER)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="boss", role=Role.ADMIN)


@pytest.fixture
def client_as(client):
    """Log the test client in as a given user and return it."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def api_as():
    def login(user):
        api = APIClient()
        api.force_authenticate(user)
        return api

    return login


@pytest.fixture(autouse=True)
def _fresh_workspace_settings():
    """The settings row is cached per process; each test starts from its own database."""
    from annotator.models import _settings_cache

    _settings_cache.clear()
    yield
    _settings_cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories create many users; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Login-failure counters and throttles start from nothing in every test."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def tasks_inline(settings):
    """Celery runs tasks in the calling process. Celery reads the Django setting (its
    CELERY_ name wins over app.conf's short name in 5.6), so both are set."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
