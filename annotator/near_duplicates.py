"""Near-duplicate texts: MinHash signatures of word shingles and LSH (datasketch).

Two texts are near-duplicates when the estimated Jaccard similarity of their sets of word
shingles (``NEAR_DUPLICATE_SHINGLE`` words, after the normalization decontamination uses)
reaches ``NEAR_DUPLICATE_THRESHOLD`` (0.8 by default). LSH proposes the candidates, so a
text is compared with the few that share a band of its signature, not with every other.
"""

import hashlib
from collections.abc import Hashable
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH
from django.conf import settings

from .decontamination import ngrams, normalize, words

PERMUTATIONS = 128
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


def signature_bytes(texts: list[str]) -> list[bytes]:
    """signatures() as stored: the hash values as little-endian 32-bit integers (MinHash
    keeps them below 2**32), b"" for a text without a word."""
    return [m.hashvalues.astype("<u4").tobytes() if m is not None else b""
            for m in signatures(texts)]  # fmt: skip


def params() -> str:
    """The settings a stored signature and its bands depend on."""
    return (
        f"shingle={settings.NEAR_DUPLICATE_SHINGLE} "
        f"threshold={settings.NEAR_DUPLICATE_THRESHOLD} permutations={PERMUTATIONS}"
    )


@lru_cache
def _bands(threshold: float, permutations: int) -> tuple[tuple[int, int], ...]:
    # The bands MinHashLSH would use, so that stored keys propose the candidates it would.
    return tuple(MinHashLSH(threshold=threshold, num_perm=permutations).hashranges)


def band_keys(hashes: bytes) -> list[int]:
    """The keys of a stored signature's LSH bands (signed 64-bit, the band's number in
    each): two signatures share a key when they share that band's hash values."""
    if not hashes:
        return []
    values = np.frombuffer(hashes, dtype="<u4")
    keys = []
    for number, (start, end) in enumerate(_bands(settings.NEAR_DUPLICATE_THRESHOLD, len(values))):
        digest = hashlib.blake2b(values[start:end].tobytes(), digest_size=8, salt=bytes([number]))
        keys.append(int.from_bytes(digest.digest(), "little", signed=True))
    return keys


def jaccard(a: bytes, b: bytes) -> float:
    """The estimated Jaccard similarity of two stored signatures (MinHash.jaccard)."""
    if not a or not b or len(a) != len(b):
        return 0.0
    x, y = np.frombuffer(a, dtype="<u4"), np.frombuffer(b, dtype="<u4")
    return float(np.count_nonzero(x == y)) / len(x)


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
