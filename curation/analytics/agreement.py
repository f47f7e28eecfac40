"""Whether to trust the judge: agreement between the judge and people, and between people,
per question (Cohen's kappa and a confusion table, with the steps behind each figure).

Every pair counts once: a step rated by a person and judged by a judge job of a prompt
version and model is one judge-human pair per person; a step two people rated is one
human-human pair per two of them. Each pair remembers its trace, so that a figure can list
the traces behind it.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from ..models import Correctness, Faithfulness, JudgeJob, StepRating

QUESTIONS = {
    "correctness": [str(value) for value in Correctness.values],
    "faithfulness": list(Faithfulness.values),
}


@dataclass
class Agreement:
    """The pairs of one question for one group (a judge, or people)."""

    categories: list[str]
    pairs: list[tuple[str, str, int]] = field(default_factory=list)  # (a, b, trace id)

    @property
    def steps(self) -> int:
        return len(self.pairs)

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa; None without pairs, 1.0 when both always gave one same category."""
        n = len(self.pairs)
        if not n:
            return None
        observed = sum(a == b for a, b, _ in self.pairs) / n
        left, right = Counter(a for a, _, _ in self.pairs), Counter(b for _, b, _ in self.pairs)
        expected = sum(left[c] * right[c] for c in self.categories) / (n * n)
        if expected >= 1:
            return 1.0
        return round((observed - expected) / (1 - expected), 3)

    @property
    def observed(self) -> float | None:
        n = len(self.pairs)
        return round(sum(a == b for a, b, _ in self.pairs) / n, 3) if n else None

    def confusion(self) -> list[dict]:
        """Rows of the first rater's category, a cell per the second's: count and traces."""
        cells: dict[tuple[str, str], set[int]] = defaultdict(set)
        counts: Counter = Counter()
        for a, b, trace in self.pairs:
            counts[a, b] += 1
            cells[a, b].add(trace)
        return [
            {"category": a, "cells": [{"category": b, "count": counts[a, b],
                                       "traces": sorted(cells[a, b])} for b in self.categories]}
            for a in self.categories
        ]  # fmt: skip

    def traces(self, a: str | None = None, b: str | None = None) -> list[int]:
        return sorted(
            {t for x, y, t in self.pairs if (a is None or x == a) and (b is None or y == b)}
        )


def _value(question: str, rating) -> str | None:
    """A rating as a category: a judge's dict, or a person's stored value."""
    value = rating.get(question) if isinstance(rating, dict) else rating
    if value is None or value == "":
        return None
    return str(value)


def agreement_figures() -> dict:
    """{"judges": {(prompt version, model): {question: Agreement}}, "humans": {question:
    Agreement}} over every stored rating: one query for people's ratings, one streamed over
    the succeeded judge jobs."""
    human: dict[int, list[tuple[int | None, str, int]]] = defaultdict(list)
    for step_id, correctness, tag, trace in StepRating.objects.values_list(
        "step_id", "correctness", "faithfulness", "step__trace_id"
    ).order_by("step_id", "rater_id"):
        human[step_id].append((correctness, tag, trace))

    humans = {question: Agreement(categories) for question, categories in QUESTIONS.items()}
    for ratings in human.values():
        for first, second in combinations(ratings, 2):
            for index, question in enumerate(QUESTIONS):
                a, b = _value(question, first[index]), _value(question, second[index])
                if a and b:
                    humans[question].pairs.append((a, b, first[2]))

    judges: dict[tuple[str, str], dict[str, Agreement]] = {}
    jobs = JudgeJob.objects.filter(status=JudgeJob.Status.SUCCEEDED).order_by(
        "prompt__name", "-prompt__version", "endpoint__model", "pk"
    )
    for name, version, model, trace, step_ids, ratings in jobs.values_list(
        "prompt__name", "prompt__version", "endpoint__model", "trace_id", "step_ids", "ratings"
    ).iterator(chunk_size=500):
        group = judges.setdefault(
            (f"{name} v{version}", model), {q: Agreement(c) for q, c in QUESTIONS.items()}
        )
        for step_id, judged in zip(step_ids, ratings, strict=False):
            for person in human.get(step_id, ()):
                for index, question in enumerate(QUESTIONS):
                    a, b = _value(question, person[index]), _value(question, judged)
                    if a and b:
                        group[question].pairs.append((a, b, trace))
    return {"judges": judges, "humans": humans}
