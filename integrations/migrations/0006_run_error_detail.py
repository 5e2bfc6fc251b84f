from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0005_apikey_id_without_hash"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="error_detail",
            field=models.TextField(blank=True),
        ),
    ]
