"""A batch keeps the lowest and highest key it staged: the apply's search for a key staged in two
batches is skipped when no two batches' spans overlap (issue 14: the apply's serial part)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0011_runchange_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncbatch",
            name="key_span",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
