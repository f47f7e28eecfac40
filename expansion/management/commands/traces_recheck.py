from django.core.management.base import BaseCommand, CommandError

from expansion.models import Trace
from expansion.norms import norms_refresh
from expansion.rechecks import traces_check_again


class Command(BaseCommand):
    help = (
        "Compute the checks and flags of succeeded traces again from their stored texts: for "
        "traces checked before a check existed, or after a CHECK_* threshold changed. The "
        "answer comparisons are kept. Then the medians are recomputed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--trace", type=int, action="append", default=[],
                            help="Only this trace (repeatable).")  # fmt: skip

    def handle(self, *args, trace: list[int], **options):
        traces = Trace.objects.filter(status=Trace.Status.SUCCEEDED)
        if trace:
            traces = traces.filter(pk__in=trace)
            if traces.count() != len(set(trace)):
                raise CommandError("Some of these traces do not exist or have not succeeded.")
        done = traces_check_again(traces=traces)
        changed = norms_refresh()
        self.stdout.write(f"Checked {done} traces again; " + ", ".join(
            f"{flag}: {n} changed" for flag, n in changed.items()))  # fmt: skip
