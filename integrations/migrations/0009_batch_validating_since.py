"""A batch of a run still receiving may be validated at once (issue 14): the claim that bounds how
many such validations one customer runs at a time."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0008_run_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncbatch",
            name="validating_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
