"""A created row's journal entry keeps a hash of the values the run wrote instead of the values
(issue 15: the journal's cost on a first load)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0010_syncrun_review_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="runchange",
            name="digest",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
