from django.db import migrations, models


def keep_the_newest_active(apps, schema_editor):
    """Before the constraint: of several active versions, the newest stays active, the one
    new submissions used (prompt_active took the newest)."""
    PromptVersion = apps.get_model("expansion", "PromptVersion")
    active = PromptVersion.objects.filter(is_active=True).order_by("-created_at", "-pk")
    newest = active.values_list("pk", flat=True).first()
    if newest is not None:
        active.exclude(pk=newest).update(is_active=False)


class Migration(migrations.Migration):
    dependencies = [
        ("expansion", "0008_unchecked_answers_are_no_mismatch"),
    ]

    operations = [
        migrations.RunPython(keep_the_newest_active, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="promptversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_active", True)),
                fields=("is_active",),
                name="one_active_prompt",
            ),
        ),
    ]
