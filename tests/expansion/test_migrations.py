"""Migrations keep existing data valid."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_one_active_prompt_keeps_the_newest_of_several_active_versions():
    before, after = (
        [("expansion", "0008_unchecked_answers_are_no_mismatch")],
        [("expansion", "0009_one_active_prompt")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    PromptVersion = executor.loader.project_state(before).apps.get_model(
        "expansion", "PromptVersion"
    )
    fields = {"system": "s", "invariants": "i", "content_hash": "h", "is_active": True}
    old, newest = (PromptVersion.objects.create(version=n, **fields) for n in (1, 2))
    PromptVersion.objects.create(version=3, **{**fields, "is_active": False})
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    PromptVersion = executor.loader.project_state(after).apps.get_model(
        "expansion", "PromptVersion"
    )
    assert list(PromptVersion.objects.filter(is_active=True).values_list("pk", flat=True)) == [
        newest.pk
    ]
    assert PromptVersion.objects.count() == 3 and old.pk != newest.pk
    # Back to the latest migrations, which the next tests' database needs.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
