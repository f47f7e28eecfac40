from django.apps import AppConfig


class ExpansionConfig(AppConfig):
    name = "expansion"
    verbose_name = "Expansion"
