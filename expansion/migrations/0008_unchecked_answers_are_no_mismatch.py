"""Answers that could not be compared (matches_reference null) are no longer flagged as a
mismatch: clear the flag on the traces stored before."""

from django.db import migrations


def clear_unchecked(apps, schema_editor):
    Trace = apps.get_model("expansion", "Trace")
    Trace.objects.filter(flag_answer_mismatch=True, checks__matches_reference=None).update(
        flag_answer_mismatch=False
    )


class Migration(migrations.Migration):
    dependencies = [("expansion", "0007_api_key_env_names")]

    operations = [migrations.RunPython(clear_unchecked, migrations.RunPython.noop)]
