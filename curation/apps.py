from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from expansion.signals import trace_checks_changed, trace_succeeded

        from .analytics import tasks  # noqa: F401  (registers the analytics tasks)
        from .analytics.receivers import profile_succeeded_trace
        from .ratings.steps import split_succeeded_trace

        trace_succeeded.connect(profile_succeeded_trace, dispatch_uid="analytics-profile")
        trace_succeeded.connect(split_succeeded_trace, dispatch_uid="ratings-split")
        from .judging.services import judge_succeeded_trace

        trace_succeeded.connect(judge_succeeded_trace, dispatch_uid="judge-after-expansion")
        trace_checks_changed.connect(profile_succeeded_trace, dispatch_uid="analytics-reprofile")
