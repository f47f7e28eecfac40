from django.core.management.base import BaseCommand

from curation.analytics.profiles import marker_count_all, profiles_fill
from curation.models import Marker


class Command(BaseCommand):
    help = (
        "Profile succeeded traces that have no analytics profile yet (traces expanded before "
        "the analytics existed), and count markers that were never fully counted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--recount", action="store_true", help="Count every marker again over every trace."
        )

    def handle(self, *args, recount: bool, **options):
        profiled = profiles_fill()
        self.stdout.write(f"Profiled {profiled} traces.")
        markers = Marker.objects.all() if recount else Marker.objects.filter(counted_at=None)
        for marker in markers:
            carrying = marker_count_all(marker_id=marker.pk)
            self.stdout.write(f"Counted {marker.phrase!r}: {carrying} traces carry it.")
