"""Claiming one row of a queue when many people ask at once (leases, review claims, ratings).

On PostgreSQL the candidates are read with ``FOR UPDATE SKIP LOCKED``: concurrent claims lock
different rows instead of waiting for each other. A candidate read before another claim
committed may be taken already, so ``take`` checks it again under the lock (each statement
sees the latest committed data) and returns None to pass it over. SQLite has no row locks:
its write transactions run one at a time (IMMEDIATE mode, see settings), which serializes
claims.
"""

from collections.abc import Callable
from typing import TypeVar

from django.db import connections, transaction
from django.db.models import Model, QuerySet

Row = TypeVar("Row", bound=Model)
Claimed = TypeVar("Claimed")

MAX_TRIES = 20  # candidates passed over before a claim gives up (they were all taken)


def claim_first(candidates: QuerySet[Row], take: Callable[[Row], Claimed | None]) -> Claimed | None:
    """The first candidate (in the queryset's order) that ``take`` claims, or None.

    ``take(row)`` runs under the row's lock: it rechecks the row, writes the claim and returns
    what was claimed, or returns None when the row no longer qualifies.
    """
    # Joins the caller's transaction (the claim is held until it commits) without a savepoint.
    with transaction.atomic(using=candidates.db, savepoint=False):
        if connections[candidates.db].features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        passed_over: list = []
        for _ in range(MAX_TRIES):
            row = candidates.exclude(pk__in=passed_over).first()
            if row is None:
                return None
            claimed = take(row)
            if claimed is not None:
                return claimed
            passed_over.append(row.pk)
    return None
