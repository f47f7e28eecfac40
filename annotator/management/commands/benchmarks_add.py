from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.benchmarks import benchmark_add
from annotator.problem_import import FORMATS, ImportFileError


class Command(BaseCommand):
    help = (
        "Register a benchmark set (JSONL or CSV with a problem text field) and mark every "
        "problem of the bank that overlaps it. Every line is checked first; nothing is stored "
        "if any line is bad."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True, help="The benchmark's name, e.g. aime24.")
        parser.add_argument("--field", default="problem", help="The problem text's field.")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the extension.")
        parser.add_argument("--replace", action="store_true",
                            help="Load a registered benchmark's items again.")  # fmt: skip

    def handle(self, *args, path, name, field, format, replace, **options):
        try:
            report = benchmark_add(path=path, name=name, text_field=field, fmt=format,
                                   replace=replace)  # fmt: skip
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stderr.write(f"{path.name}: {error}")
        if report.errors:
            raise CommandError(
                f"{len(report.errors)} bad line(s) in {path.name}; nothing was stored."
            )
        marked = report.contaminated[report.name]
        verb = "Replaced" if report.replaced else "Registered"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} benchmark '{report.name}': {report.items} item(s); {marked} problem(s) "
            "of the bank overlap it."
        ))  # fmt: skip
