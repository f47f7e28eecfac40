from django.core.management.base import BaseCommand

from annotator.decontamination import problems_decontaminate
from annotator.problem_groups import problem_groups_store


class Command(BaseCommand):
    help = (
        "Compare every problem with every registered benchmark again (after a change of "
        "DECONTAMINATION_NGRAM) and make every problem's MinHash signature again and regroup "
        "near-duplicate problems (NEAR_DUPLICATE_*)."
    )

    def handle(self, *args, **options):
        counts = problems_decontaminate()
        for name, count in sorted(counts.items()):
            self.stdout.write(f"{name}: {count} problem(s) overlap it.")
        grouped = problem_groups_store()
        self.stdout.write(self.style.SUCCESS(
            f"Checked; {sum(counts.values())} contamination(s), {grouped} problem(s) in "
            "near-duplicate groups."
        ))  # fmt: skip
