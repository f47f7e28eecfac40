from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development tools (the simulated LLM endpoint, the demo); the product never imports it."""

    name = "devtools"
    verbose_name = "Development tools"
