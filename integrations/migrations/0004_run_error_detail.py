from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0003_drop_generic_staging"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="error_detail",
            field=models.TextField(blank=True),
        ),
    ]
