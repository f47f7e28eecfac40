from django.apps import AppConfig


class ExpansionConfig(AppConfig):
    name = "expansion"
    verbose_name = "Expansion"

    def ready(self):
        from annotator.services import annotation_submitted

        from .receivers import queue_expansions

        annotation_submitted.connect(queue_expansions, dispatch_uid="expansion.queue")
