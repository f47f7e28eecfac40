import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q


def _lines(text):
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalize_edits(apps, schema_editor):
    """Edits saved before line endings were normalized: an edit that only changed CRLF to LF
    (a browser's textarea) is no edit at all."""
    TraceReview = apps.get_model("curation", "TraceReview")
    with_cr = Q(edited_thought__contains="\r") | Q(edited_solution__contains="\r")
    for review in TraceReview.objects.filter(with_cr).select_related("trace").iterator():
        for part in ("thought", "solution"):
            edited = _lines(getattr(review, f"edited_{part}"))
            if edited == _lines(getattr(review.trace, part)):
                edited = ""
            setattr(review, f"edited_{part}", edited)
        review.save(update_fields=["edited_thought", "edited_solution"])


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0004_profile_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewdecision",
            name="undoes",
            field=models.OneToOneField(
                blank=True,
                help_text="For an undo: the decision it takes back (each at most once).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="undone_by",
                to="curation.reviewdecision",
            ),
        ),
        migrations.AlterField(
            model_name="reviewdecision",
            name="decision",
            field=models.CharField(
                choices=[
                    ("approve", "Approve"),
                    ("reject", "Reject"),
                    ("return", "Return to the annotator"),
                    ("reexpand", "Re-expand"),
                    ("undo", "Undo"),
                ],
                max_length=16,
            ),
        ),
        migrations.RunPython(normalize_edits, migrations.RunPython.noop),
    ]
