"""The review permission declared on SyncRun (Meta.permissions) instead of created by a post_migrate
handler. The codename and name are the handler's: databases that have the row keep it, and Django's
create_permissions makes it where it is missing. No schema change."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0009_batch_validating_since"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="syncrun",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("review_syncrun", "Can review sync runs (approve, reject, cancel, retry, download errors)"),
                ],
            },
        ),
    ]
