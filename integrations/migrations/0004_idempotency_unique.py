"""The Idempotency-Key unique per customer by a constraint (IdempotencyKey); existing keys move in:
per customer and key, the newest run that used it."""

import django.db.models.deletion
from django.db import migrations, models


def claim_existing_keys(apps, schema_editor):
    SyncRun = apps.get_model("integrations", "SyncRun")
    IdempotencyKey = apps.get_model("integrations", "IdempotencyKey")
    newest = {}
    runs = (SyncRun.objects.exclude(idempotency_key="").order_by("created_at")
            .values_list("pk", "integration__customer_id", "idempotency_key"))
    for run_id, customer_id, key in runs.iterator():
        newest[(customer_id, key)] = run_id
    IdempotencyKey.objects.bulk_create(
        (IdempotencyKey(customer_id=customer_id, key=key, run_id=run_id) for (customer_id, key), run_id in newest.items()),
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0003_drop_generic_staging'),
    ]

    operations = [
        migrations.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=200)),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='integrations.customer')),
                ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='idempotency_claim', to='integrations.syncrun')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('customer', 'key'), name='idempotency_key_unique')],
            },
        ),
        migrations.RunPython(claim_existing_keys, migrations.RunPython.noop),
    ]
