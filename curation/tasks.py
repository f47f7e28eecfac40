from celery import shared_task

from .exports.runs import export_run


@shared_task(acks_late=True, ignore_result=True)
def run_export(export_id: int) -> None:
    export_run(export_id=export_id)
