from django.core.management.base import BaseCommand

from expansion.norms import norms_refresh


class Command(BaseCommand):
    help = (
        "Recompute the medians the overthinking and no-reflection checks compare with (per "
        "problem level and per prompt version) and set those flags on every succeeded trace. "
        "The beat schedule does this every TRACE_NORMS_SECONDS."
    )

    def handle(self, *args, **options):
        changed = norms_refresh()
        self.stdout.write(", ".join(f"{flag}: {n} traces changed" for flag, n in changed.items()))
