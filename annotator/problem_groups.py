"""The bank's near-duplicate groups, kept from stored signatures.

Every problem's MinHash signature is stored (``ProblemSignature``) with the keys of its LSH
bands (``SignatureBand``, indexed). An import hashes only its incoming rows, asks the
database which problems share a band with them, compares their signatures, and rewrites only
the groups it touches. A stored signature is stale when it was made with other parameters
(``near_duplicates.params()``) or its problem was saved after it (``updated_at``); stale ones
are made again before use. ``manage.py decontaminate`` makes every signature again and
regroups the whole bank.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from itertools import islice

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from . import near_duplicates
from .models import NearDuplicate, Problem, ProblemSignature, SignatureBand

# Ids or keys per query: under SQLite's historical bound of 999 values per statement.
CHUNK = 900
# Signatures written at once from which the database's statistics are refreshed.
ANALYZE_AFTER = 10_000


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


def stale_problems() -> QuerySet:
    """Problems without a current stored signature."""
    return Problem.objects.filter(
        Q(signature__isnull=True)
        | ~Q(signature__params=near_duplicates.params())
        | Q(updated_at__gt=F("signature__computed_at"))
    )


def signatures_made_otherwise() -> bool:
    """Whether stored signatures were made with other settings (all groups are then stale)."""
    return ProblemSignature.objects.exclude(params=near_duplicates.params()).exists()


def statements_signatures(pks: Iterable[int]) -> dict[int, bytes]:
    """Signatures made from these problems' statements, by problem id."""
    made: dict[int, bytes] = {}
    for chunk in _chunks(pks):
        rows = list(Problem.objects.filter(pk__in=chunk).values_list("pk", "statement"))
        hashes = near_duplicates.signature_bytes([statement for _, statement in rows])
        made.update(zip([pk for pk, _ in rows], hashes, strict=True))
    return made


def signatures_store(signatures: dict[int, bytes], *, new: Collection[int] = ()) -> None:
    """Store these signatures (by problem id) and their bands, replacing those stored
    (``new`` problems, just created, have none to replace)."""
    params, now = near_duplicates.params(), timezone.now()
    for chunk in _chunks(signatures):
        if replaced := [pk for pk in chunk if pk not in new]:
            ProblemSignature.objects.filter(problem_id__in=replaced).delete()
            SignatureBand.objects.filter(problem_id__in=replaced).delete()
        ProblemSignature.objects.bulk_create(
            ProblemSignature(problem_id=pk, params=params, hashes=signatures[pk], computed_at=now)
            for pk in chunk
        )
        _bands_insert(
            [(pk, key) for pk in chunk for key in near_duplicates.band_keys(signatures[pk])]
        )


def _bands_insert(rows: list[tuple[int, int]]) -> None:
    # Nine bands a problem: on PostgreSQL COPY writes them at a fraction of an INSERT's cost.
    if connection.vendor != "postgresql":
        SignatureBand.objects.bulk_create(SignatureBand(problem_id=pk, key=key) for pk, key in rows)
        return
    table = connection.ops.quote_name(SignatureBand._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.copy(
            f"COPY {table} (problem_id, key) FROM STDIN"  # noqa: S608 (the model's own table)
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _statistics_refresh() -> None:
    """After many signatures are written: without fresh statistics PostgreSQL's planner
    takes the band index for useless and reads the whole table for each lookup."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (ProblemSignature, SignatureBand):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def signatures_refresh(*, everything: bool = False) -> list[int]:
    """Make and store the stale signatures (every one with ``everything``); their problems."""
    if everything:
        ProblemSignature.objects.all().delete()
        SignatureBand.objects.all().delete()
        pks = list(Problem.objects.order_by("pk").values_list("pk", flat=True))
    else:
        pks = list(stale_problems().order_by("pk").values_list("pk", flat=True))
    for chunk in _chunks(pks):
        signatures_store(statements_signatures(chunk), new=chunk if everything else ())
    if len(pks) >= ANALYZE_AFTER:
        _statistics_refresh()
    return pks


class Bands:
    """Signatures not read from the database, by problem id, in an in-memory band index."""

    def __init__(self, signatures: dict[int, bytes]):
        self.signatures = signatures
        self.by_key: dict[int, list[int]] = defaultdict(list)
        for pk, hashes in signatures.items():
            for key in near_duplicates.band_keys(hashes):
                self.by_key[key].append(pk)

    def candidates(self, keys: list[int]) -> set[int]:
        return {pk for key in keys for pk in self.by_key.get(key, ())}


def neighbours(signatures: list[bytes], *, leave_out: Collection[int] = (),
               overlay: Bands | None = None) -> list[set[int]]:  # fmt: skip
    """For each signature, the problems whose signature is a near-duplicate of it: those
    sharing a band key with it, then compared. The ``overlay``'s problems are compared by
    its signatures, not the stored ones (a dry run's, made afresh); ``leave_out`` never."""
    threshold = settings.NEAR_DUPLICATE_THRESHOLD
    ours = overlay.signatures if overlay else {}
    keys = [near_duplicates.band_keys(hashes) for hashes in signatures]
    holders: dict[int, set[int]] = defaultdict(set)
    for chunk in _chunks({key for row in keys for key in row}):
        for key, pk in SignatureBand.objects.filter(key__in=chunk).values_list("key", "problem_id"):
            holders[key].add(pk)
    candidates = []
    for row in keys:
        found = {pk for key in row for pk in holders.get(key, ()) if pk not in ours}
        if overlay:
            found |= overlay.candidates(row)
        candidates.append(found.difference(leave_out))
    stored: dict[int, bytes] = {}
    wanted = set().union(*candidates).difference(ours)
    for chunk in _chunks(wanted):
        stored.update(
            ProblemSignature.objects.filter(problem_id__in=chunk, params=near_duplicates.params())
            .values_list("problem_id", "hashes")
        )  # fmt: skip
    return [
        {pk for pk in found
         if near_duplicates.jaccard(hashes, ours.get(pk) or stored.get(pk, b"")) >= threshold}
        for hashes, found in zip(signatures, candidates, strict=True)
    ]  # fmt: skip


def _pairs(holders: Iterable[tuple[int, int]], among: Collection[int] | None = None):
    """The near-duplicate pairs (p, q), p < q, of problems that share a band key, given
    (key, problem) rows; with ``among``, only pairs with one of those problems in them."""
    threshold = settings.NEAR_DUPLICATE_THRESHOLD
    by_key: dict[int, list[int]] = defaultdict(list)
    for key, pk in holders:
        by_key[key].append(pk)
    pairs = {(a, b) for pks in by_key.values() for a in pks for b in pks
             if a < b and (among is None or a in among or b in among)}  # fmt: skip
    stored: dict[int, bytes] = {}
    for chunk in _chunks({pk for pair in pairs for pk in pair}):
        stored.update(ProblemSignature.objects.filter(problem_id__in=chunk)
                      .values_list("problem_id", "hashes"))  # fmt: skip
    for a, b in sorted(pairs):
        if near_duplicates.jaccard(stored[a], stored[b]) >= threshold:
            yield a, b


def _links(pks: Iterable[int]) -> Iterator[tuple[int, int]]:
    """The near-duplicate pairs in the stored signatures that hold one of these problems."""
    for chunk in _chunks(pks):
        theirs = SignatureBand.objects.filter(problem_id__in=chunk).values("key")
        holders = SignatureBand.objects.filter(key__in=theirs).values_list("key", "problem_id")
        yield from _pairs(holders, among=set(chunk))


def _links_all() -> Iterator[tuple[int, int]]:
    """Every near-duplicate pair in the stored signatures: the database finds the keys
    that more than one problem holds, so only those problems' signatures are read."""
    shared = (SignatureBand.objects.values("key").annotate(holders=Count("id"))
              .filter(holders__gt=1).values("key"))  # fmt: skip
    yield from _pairs(SignatureBand.objects.filter(key__in=shared).values_list("key", "problem_id"))


def _links_among(pks: list[int]) -> Iterator[tuple[int, int]]:
    """The pairs of near-duplicates among these problems alone (compared in memory)."""
    threshold = settings.NEAR_DUPLICATE_THRESHOLD
    stored: dict[int, bytes] = {}
    for chunk in _chunks(pks):
        stored.update(ProblemSignature.objects.filter(problem_id__in=chunk)
                      .values_list("problem_id", "hashes"))  # fmt: skip
    bands = Bands(stored)
    for pk, hashes in stored.items():
        for other in bands.candidates(near_duplicates.band_keys(hashes)):
            if other > pk and near_duplicates.jaccard(hashes, stored[other]) >= threshold:
                yield pk, other


class _Components:
    """Problems linked through near-duplicates (union-find)."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def root(self, key: int) -> int:
        parent = self.parent
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def link(self, a: int, b: int) -> None:
        a, b = self.root(a), self.root(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """The groups of two or more, each sorted (its first problem names it)."""
        members: dict[int, list[int]] = defaultdict(list)
        for key in list(self.parent):
            members[self.root(key)].append(key)
        return [sorted(group) for group in members.values() if len(group) > 1]


def _groups_write(components: _Components, *, replacing: Iterable[int] = ()) -> int:
    """Store the components' groups in place of those of ``replacing``; how many rows."""
    for chunk in _chunks(replacing):
        NearDuplicate.objects.filter(problem_id__in=chunk).delete()
    rows = (NearDuplicate(problem_id=pk, group=group[0])
            for group in components.groups() for pk in group)  # fmt: skip
    stored = 0
    for batch in _chunks(rows, 2000):
        NearDuplicate.objects.bulk_create(batch)
        stored += len(batch)
    return stored


@transaction.atomic
def problem_groups_store(*, recompute: bool = True) -> int:
    """Regroup the whole bank from its signatures, every one made again (``recompute``) or
    the stale ones only; returns how many problems are in a group."""
    signatures_refresh(everything=recompute)
    NearDuplicate.objects.all().delete()
    components = _Components()
    for a, b in _links_all():
        components.link(a, b)
    return _groups_write(components)


@transaction.atomic
def problem_groups_update(pks: Collection[int]) -> None:
    """Regroup after these problems' signatures changed (and were stored): attach them to
    the groups of the problems they are near-duplicates of, merge the groups they link and
    split those they may have held together. No other group is read or written."""
    changed = set(pks)
    components = _Components()
    touched = set(changed)
    for a, b in _links(sorted(changed)):
        components.link(a, b)
        touched.update((a, b))
    group_ids: set[int] = set()
    for chunk in _chunks(touched):
        group_ids.update(NearDuplicate.objects.filter(problem_id__in=chunk)
                         .values_list("group", flat=True))  # fmt: skip
    old: dict[int, list[int]] = defaultdict(list)
    for chunk in _chunks(group_ids):
        for group, pk in NearDuplicate.objects.filter(group__in=chunk).values_list(
            "group", "problem_id"
        ):
            old[group].append(pk)
    for members in old.values():
        touched.update(members)
        kept = [pk for pk in members if pk not in changed]
        if len(kept) == len(members):
            # No member changed, so the links that made the group still hold.
            for pk in members[1:]:
                components.link(members[0], pk)
        else:
            # The others may fall apart without a changed member. Their links to changed
            # problems are found above, and none leads out of the group (groups are closed).
            for a, b in _links_among(kept):
                components.link(a, b)
    _groups_write(components, replacing=touched)


@transaction.atomic
def problems_regroup(*, pks: Collection[int]) -> None:
    """Make these problems' signatures again (their statements changed) and regroup them."""
    signatures_store(statements_signatures(pks))
    problem_groups_update(pks)
