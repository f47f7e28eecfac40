from celery import shared_task

from .profiles import marker_count_all, profiles_fill


@shared_task(acks_late=True, ignore_result=True)
def count_marker(marker_id: int) -> None:
    marker_count_all(marker_id=marker_id)


@shared_task(acks_late=True, ignore_result=True)
def fill_profiles() -> None:
    profiles_fill()


@shared_task(acks_late=True, ignore_result=True)
def refresh_figures(kind: str, *args: str) -> None:
    from .figures import figures_refresh

    figures_refresh(kind, *args)


@shared_task(ignore_result=True, expires=60)
def refresh_default_figures() -> None:
    from .figures import defaults_refresh

    defaults_refresh()
