from django.db import migrations


def create_default_solve_prompt(apps, schema_editor):
    """The default solve prompt as its first version, so that a campaign can be created on
    a fresh install without writing one (solve_prompt_default makes it again if deleted)."""
    from expansion.rollouts.prompts import DEFAULT_PROMPT, content_hash

    SolvePrompt = apps.get_model("expansion", "SolvePrompt")
    wanted = content_hash(DEFAULT_PROMPT)
    if SolvePrompt.objects.filter(name=DEFAULT_PROMPT["name"], content_hash=wanted).exists():
        return
    latest = SolvePrompt.objects.filter(name=DEFAULT_PROMPT["name"]).order_by("-version").first()
    SolvePrompt.objects.create(
        **DEFAULT_PROMPT, version=(latest.version + 1) if latest else 1, content_hash=wanted
    )


class Migration(migrations.Migration):
    dependencies = [
        ("expansion", "0017_batch_lease"),
    ]

    operations = [
        migrations.RunPython(create_default_solve_prompt, migrations.RunPython.noop),
    ]
