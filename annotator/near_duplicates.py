"""Near-duplicate texts: MinHash signatures of word shingles and LSH (datasketch).

Two texts are near-duplicates when the estimated Jaccard similarity of their sets of word
shingles (``NEAR_DUPLICATE_SHINGLE`` words, after the normalization decontamination uses)
reaches ``NEAR_DUPLICATE_THRESHOLD`` (0.8 by default). LSH proposes the candidates, so a
text is compared with the few that share a band of its signature, not with every other.
"""

from collections.abc import Hashable, Iterable
from itertools import islice

from datasketch import MinHash, MinHashLSH
from django.conf import settings
from django.db import transaction

from .decontamination import ngrams, normalize, words
from .models import NearDuplicate, Problem

PERMUTATIONS = 128
CHUNK = 2000
# Making a MinHash draws its permutations, which costs more than hashing a statement's
# shingles; a copy of this one (or MinHash.bulk) reuses them.
_EMPTY = MinHash(num_perm=PERMUTATIONS)


def shingles(text: str, size: int | None = None) -> set[bytes]:
    tokens = words(normalize(text))
    size = size or settings.NEAR_DUPLICATE_SHINGLE
    if len(tokens) < size:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(gram).encode() for gram in ngrams(tokens, size)}


def signature(text: str) -> MinHash | None:
    """The text's MinHash; None for a text without a word (it resembles nothing)."""
    found = shingles(text)
    if not found:
        return None
    minhash = _EMPTY.copy()
    minhash.update_batch(list(found))
    return minhash


def signatures(texts: list[str]) -> list[MinHash | None]:
    """signature() of each text, in bulk."""
    found = [shingles(text) for text in texts]
    made = iter(MinHash.bulk([list(s) for s in found if s], num_perm=PERMUTATIONS))
    return [next(made) if s else None for s in found]


class Sketch:
    """Signatures by key, in an LSH index, to ask which keys a text is a near-duplicate of."""

    def __init__(self, threshold: float | None = None):
        self.threshold = threshold if threshold is not None else settings.NEAR_DUPLICATE_THRESHOLD
        self.lsh = MinHashLSH(threshold=self.threshold, num_perm=PERMUTATIONS)
        self.signatures: dict[Hashable, MinHash] = {}

    def add(self, key: Hashable, minhash: MinHash | None) -> None:
        if key in self.signatures:
            self.lsh.remove(key)
            del self.signatures[key]
        if minhash is not None:
            self.lsh.insert(key, minhash)
            self.signatures[key] = minhash

    def similar(self, minhash: MinHash | None, *, besides: Hashable = None) -> list:
        """The keys whose texts are near-duplicates of this one (``besides`` left out)."""
        if minhash is None:
            return []
        return [key for key in self.lsh.query(minhash) if key != besides
                and self.signatures[key].jaccard(minhash) >= self.threshold]  # fmt: skip

    def groups(self) -> list[list]:
        """Keys in groups of two or more near-duplicates (linked through any member)."""
        parent: dict = {}

        def root(key):
            parent.setdefault(key, key)
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        for key, minhash in self.signatures.items():
            for other in self.similar(minhash, besides=key):
                a, b = root(key), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        members: dict = {}
        for key in list(parent):
            members.setdefault(root(key), []).append(key)
        return [sorted(group) for group in members.values() if len(group) > 1]


def problems_sketch(problems: Iterable[tuple[int, str]] | None = None) -> Sketch:
    """A sketch of the bank's problems, keyed by id."""
    sketch = Sketch()
    if problems is None:
        problems = Problem.objects.order_by("pk").values_list("pk", "statement")
        problems = problems.iterator(chunk_size=CHUNK)
    problems = iter(problems)
    while chunk := list(islice(problems, CHUNK)):
        for (pk, _), minhash in zip(chunk, signatures([s for _, s in chunk]), strict=True):
            sketch.add(pk, minhash)
    return sketch


@transaction.atomic
def problem_groups_store(sketch: Sketch | None = None) -> int:
    """Replace the stored near-duplicate groups by the sketch's (of the whole bank);
    returns how many problems are in a group."""
    sketch = sketch or problems_sketch()
    NearDuplicate.objects.all().delete()
    rows = (NearDuplicate(problem_id=pk, group=group[0])
            for group in sketch.groups() for pk in group)  # fmt: skip
    stored = 0
    while batch := list(islice(rows, CHUNK)):
        NearDuplicate.objects.bulk_create(batch)
        stored += len(batch)
    return stored
