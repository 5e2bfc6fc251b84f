"""An API key's primary key is its prefix, no longer `<prefix>.<hash>` (the admin put the primary key
in URLs and hidden inputs, so any staff member who could see a key saw its stored hash)."""

from django.db import migrations


def ids_without_hash(apps, schema_editor):
    ApiKey = apps.get_model("integrations", "ApiKey")
    for pk, prefix in ApiKey.objects.exclude(id__in=ApiKey.objects.values("prefix")).values_list("pk", "prefix"):
        ApiKey.objects.filter(pk=pk).update(id=prefix)


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0004_idempotency_unique'),
    ]

    operations = [
        migrations.RunPython(ids_without_hash, migrations.RunPython.noop),
    ]
