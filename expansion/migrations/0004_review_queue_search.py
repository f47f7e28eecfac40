import django.contrib.postgres.search
from django.contrib.postgres.indexes import GinIndex
from django.db import migrations, models

import expansion.models

# PostgreSQL only, so not in Trace.Meta.indexes: SQLite can neither build it nor rebuild the
# table with it. The words of succeeded traces, for the review queue's text filter.
SEARCH_INDEX = GinIndex(
    fields=["search"], name="trace_search_idx", condition=models.Q(status="succeeded")
)


def add_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("expansion", "Trace"), SEARCH_INDEX)


def remove_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("expansion", "Trace"), SEARCH_INDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("expansion", "0003_queue_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="trace", name="trace_queue_idx"),
        migrations.AddField(
            model_name="trace",
            name="search",
            field=models.GeneratedField(
                db_persist=True,
                expression=expansion.models.TraceWords(),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="trace",
            index=models.Index(
                condition=models.Q(("status", "succeeded")),
                fields=[
                    "created_at",
                    "id",
                    "annotation",
                    "endpoint",
                    "prompt",
                    "flag_answer_mismatch",
                    "flag_low_coverage",
                    "flag_too_short",
                    "flag_leakage",
                    "flag_truncated",
                ],
                name="trace_queue_idx",
            ),
        ),
        migrations.RunPython(add_search_index, remove_search_index),
    ]
