from celery import shared_task

from .exports.runs import export_run, exports_fail_stalled


@shared_task(acks_late=True, ignore_result=True)
def run_export(export_id: int) -> None:
    export_run(export_id=export_id)


@shared_task(ignore_result=True)
def fail_stalled_exports() -> None:
    exports_fail_stalled()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=None)  # fmt: skip
def judge_steps(self, job_id: int) -> None:
    """Run one judge job (a redelivered message finds it taken or done and returns)."""
    from django.conf import settings

    from expansion.jobs.retrying import DATABASE_DOWN

    from .judging.running import judge_run

    try:
        judge_run(job_id=job_id)
    except DATABASE_DOWN as error:
        raise self.retry(countdown=settings.EXPANSION_DB_RETRY_SECONDS) from error


@shared_task(ignore_result=True)
def requeue_stalled_judge_jobs() -> int:
    """Send again the judge jobs whose worker died or whose message was lost."""
    from .judging.services import judge_jobs_resend

    return judge_jobs_resend()
