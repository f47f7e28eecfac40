from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("expansion", "0016_rollouts"),
    ]

    operations = [
        migrations.AddField(
            model_name="llmbatch",
            name="leased_until",
            field=models.DateTimeField(
                blank=True,
                help_text="A poller has the batch until then: one worker polls and ingests it at a time.",
                null=True,
            ),
        ),
    ]
