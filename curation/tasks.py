from celery import shared_task

from .exports.runs import export_run, exports_fail_stalled


@shared_task(acks_late=True, ignore_result=True)
def run_export(export_id: int) -> None:
    export_run(export_id=export_id)


@shared_task(ignore_result=True)
def fail_stalled_exports() -> None:
    exports_fail_stalled()
