from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotator.problem_import import FORMATS, ImportFileError, problems_import


class Command(BaseCommand):
    help = (
        "Import problems from JSONL or CSV (fields problem, solution, answer, subject, level, "
        "unique_id). Every row is validated first; nothing is imported if any row is bad "
        "unless --skip-invalid. Re-importing the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--source", required=True, help="Name of the bank, e.g. math500.")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the extension.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count only.")
        parser.add_argument("--skip-invalid", action="store_true", help="Import the good rows.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, path, source, format, dry_run, skip_invalid, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            report = problems_import(
                path=path,
                source=source,
                fmt=format,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                batch_size=batch_size,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        for error in report.errors:
            self.stderr.write(f"{path.name}: {error}")
        if report.errors and not skip_invalid:
            raise CommandError(
                f"{len(report.errors)} problem(s) in {report.rows} row(s); nothing was imported. "
                "Fix the rows above, or pass --skip-invalid to import the valid rows only."
            )
        verb = "Would import" if dry_run else "Imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {report.rows - report.skipped} of {report.rows} row(s) into "
                f"'{source}': {report.created} created, {report.updated} updated, "
                f"{report.unchanged} unchanged, {report.skipped} skipped."
            )
        )
        self.stdout.write(
            f"{report.near_duplicates} incoming row(s) are near-duplicates of problems "
            "already in the bank."
        )
        for benchmark, count in sorted(report.contaminated.items()):
            self.stdout.write(
                self.style.WARNING(f"{count} incoming row(s) overlap benchmark '{benchmark}'.")
            )
