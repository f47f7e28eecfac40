"""docker-compose.yml cannot be started here (no Docker engine), so it is checked by parsing."""

import re

import yaml
from django.conf import settings

from config.env import NAMES as SETTINGS_ENV_NAMES

COMPOSE = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text())
README = (settings.BASE_DIR / "README.md").read_text()
APP_SERVICES = ("web", "worker", "beat")


def test_every_service_the_readme_names_is_described_with_a_healthcheck():
    services = COMPOSE["services"]
    for name in (*APP_SERVICES, "postgres", "redis"):
        assert name in services, name
        assert f"`{name}`" in README, f"README does not name the {name} service"
        assert services[name]["healthcheck"]["test"], name


def test_app_services_pass_only_variables_the_settings_read():
    for name in APP_SERVICES:
        environment = COMPOSE["services"][name]["environment"]
        unknown = set(environment) - SETTINGS_ENV_NAMES
        assert not unknown, f"{name} passes variables the settings never read: {unknown}"
        for required in (
            "SECRET_KEY",
            "PSEUDONYM_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "ALLOWED_HOSTS",
            "DEBUG",
        ):
            assert required in environment, (name, required)
        assert environment["DEBUG"] == "0"


def test_app_services_use_the_compose_postgres_and_redis_and_keep_data_in_volumes():
    for name in APP_SERVICES:
        service = COMPOSE["services"][name]
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:6379")
        assert set(service["depends_on"]) == {"postgres", "redis"}
    for name in ("postgres", "redis"):
        volume = COMPOSE["services"][name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"]


def test_web_runs_gunicorn_and_workers_run_celery():
    assert re.search(r"\bgunicorn config\.wsgi\b", COMPOSE["services"]["web"]["command"])
    assert "celery -A config worker" in COMPOSE["services"]["worker"]["command"]
    assert "celery -A config beat" in COMPOSE["services"]["beat"]["command"]


def test_without_a_real_endpoint_jobs_go_to_the_compose_simulator():
    simulator = COMPOSE["services"]["simulator"]
    assert "manage.py llm_simulator --host 0.0.0.0 --port 8808" in simulator["command"]
    assert "8808" in " ".join(simulator["healthcheck"]["test"])
    assert "ports" not in simulator  # reachable from the other services only
    for name in APP_SERVICES:
        url = COMPOSE["services"][name]["environment"]["LLM_SIMULATOR_URL"]
        assert "http://simulator:8808/v1" in url, name
