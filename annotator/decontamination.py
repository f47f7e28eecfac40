"""Benchmark decontamination: is a problem (a copy of) a benchmark's test item?

Two tests, as the open reasoning-data projects run them: the normalized texts are equal
(whitespace, case and LaTeX spacing aside; digits count), or they share a word n-gram
(``DECONTAMINATION_NGRAM`` words, 8 by default as in s1 and OpenR1's decontaminate.py).

The benchmarks' n-grams are hashed into one dictionary per benchmark, built in memory for
each run from the items' stored normalized texts (so a change of n needs no migration); a
problem then costs one dictionary lookup per n-gram of its own, whatever the benchmark's size.
"""

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from .models import Benchmark, BenchmarkItem, Contamination, Problem

# LaTeX spacing that changes nothing in the text: \, \; \: \! "\ " ~ \quad \qquad
LATEX_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![a-z])|~")
SPACES = re.compile(r"\s+")
SPACE_BY_SYMBOL = re.compile(r" ?([^\w ]) ?")
WORD = re.compile(r"\w+")
KEPT_NGRAMS = 20  # shared n-grams stored per contaminated problem, for people to read
CHUNK = 2000


def _prepared(text: str) -> str:
    """NFKC (for text that is not ASCII), lower case, LaTeX spacing as a space: this text
    has the words of the normalized one, and is quicker to make."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return LATEX_SPACING.sub(" ", text.lower())


def _finished(prepared: str) -> str:
    return SPACE_BY_SYMBOL.sub(r"\1", SPACES.sub(" ", prepared)).strip()


def normalize(text: str) -> str:
    """The text as the exact-match test compares it: NFKC, lower case, LaTeX spacing gone,
    runs of white space as one space, none beside a symbol (``x + 1`` is ``x+1``)."""
    return _finished(_prepared(text))


def words(normalized: str) -> list[str]:
    """The words of a normalized text: runs of letters and digits (LaTeX commands lose
    their backslash, ``\\frac{1}{2}`` is frac 1 2)."""
    return WORD.findall(normalized)


def ngrams(tokens: list[str], n: int) -> Iterator[tuple[str, ...]]:
    return zip(*(tokens[i:] for i in range(n)), strict=False)


def text_hash(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()


@dataclass(frozen=True)
class Match:
    benchmark_id: int
    item_id: int
    exact: bool
    overlap: int  # n-grams shared with the benchmark (all its items)
    ngrams: tuple[str, ...]  # the first KEPT_NGRAMS of those shared with the matched item


class _Benchmark:
    """One benchmark's exact texts and hashed n-grams (n-gram hash -> first item with it)."""

    def __init__(self, benchmark_id: int, n: int):
        self.id, self.n = benchmark_id, n
        self.exact: dict[str, int] = {}
        self.grams: dict[int, int] = {}

    def add(self, item_id: int, normalized: str) -> None:
        self.exact.setdefault(normalized, item_id)
        for gram in ngrams(words(normalized), self.n):
            self.grams.setdefault(hash(gram), item_id)


class BenchmarkIndex:
    """Every registered benchmark (or those given), ready to match problem texts."""

    def __init__(self, benchmarks: Iterable[Benchmark] | None = None, n: int | None = None):
        self.n = n or settings.DECONTAMINATION_NGRAM
        chosen = Benchmark.objects.all() if benchmarks is None else benchmarks
        self.benchmarks = {b.pk: _Benchmark(b.pk, self.n) for b in chosen}
        items = BenchmarkItem.objects.filter(benchmark_id__in=list(self.benchmarks))
        for item_id, benchmark_id, text in items.values_list(
            "pk", "benchmark_id", "normalized"
        ).iterator(chunk_size=CHUNK):
            self.benchmarks[benchmark_id].add(item_id, text)

    @property
    def ids(self) -> list[int]:
        return list(self.benchmarks)

    def match(self, text: str) -> list[Match]:
        """The benchmarks this text overlaps, with the item each overlap points at most."""
        if not self.benchmarks:
            return []
        prepared = _prepared(text)
        tokens = words(prepared)  # the words of normalize(text)
        hashes = set(map(hash, ngrams(tokens, self.n)))
        normalized, found = None, []
        for bench in self.benchmarks.values():
            common = bench.grams.keys() & hashes  # in C, over the smaller set
            # Equal texts of n words or more share every n-gram: only without a shared
            # n-gram and with fewer words is the exact test still needed.
            if not common and len(tokens) >= self.n:
                continue
            normalized = normalized if normalized is not None else _finished(prepared)
            exact = bench.exact.get(normalized)
            if exact is None and not common:
                continue
            item = exact or Counter(bench.grams[h] for h in common).most_common(1)[0][0]
            shared = dict.fromkeys(
                " ".join(gram) for gram in ngrams(tokens, self.n)
                if bench.grams.get(hash(gram)) == item
            )  # fmt: skip
            found.append(Match(bench.id, item, exact is not None, len(common),
                               tuple(shared)[:KEPT_NGRAMS]))  # fmt: skip
        return found


def contaminations_replace(matches: dict[int, list[Match]], *, benchmark_ids: list[int],
                           n: int) -> None:  # fmt: skip
    """Store these problems' matches against these benchmarks in place of the old ones."""
    Contamination.objects.filter(
        problem_id__in=list(matches), benchmark_id__in=benchmark_ids
    ).delete()
    Contamination.objects.bulk_create(
        Contamination(problem_id=problem_id, benchmark_id=m.benchmark_id, item_id=m.item_id,
                      exact=m.exact, overlap=m.overlap, ngram_size=n, ngrams=list(m.ngrams))
        for problem_id, found in matches.items() for m in found
    )  # fmt: skip


@transaction.atomic
def problems_decontaminate(
    *, problems: QuerySet[Problem] | None = None, benchmarks: Iterable[Benchmark] | None = None
) -> Counter:
    """Compare problems (all, or these) with benchmarks (all, or these) and replace their
    contamination records; returns how many problems each benchmark name contaminates."""
    index = BenchmarkIndex(benchmarks)
    names = dict(Benchmark.objects.filter(pk__in=index.ids).values_list("pk", "name"))
    counts: Counter = Counter()
    chosen = Problem.objects.all() if problems is None else problems
    statements = chosen.order_by("pk").values_list("pk", "statement").iterator(chunk_size=CHUNK)
    while chunk := list(islice(statements, CHUNK)):
        matches = {pk: index.match(statement) for pk, statement in chunk}
        contaminations_replace(matches, benchmark_ids=index.ids, n=index.n)
        counts.update(names[m.benchmark_id] for found in matches.values() for m in found)
    return counts
