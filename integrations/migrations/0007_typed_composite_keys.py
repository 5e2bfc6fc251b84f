"""Keys of every shape (SPEC 2): a record error's key becomes JSON (a string, an integer or an
object of a composite key's fields); listed deletes move into the target's typed staging table
(StagedDelete goes); a batch counts the staging rows it wrote."""

from django.db import migrations, models


def copy_keys(apps, schema_editor):
    # until now every key was a string: as JSON, the same string
    table = schema_editor.quote_name(apps.get_model("integrations", "RecordError")._meta.db_table)
    to_json = "to_jsonb(key)" if schema_editor.connection.vendor == "postgresql" else "json_quote(key)"
    schema_editor.execute(f"UPDATE {table} SET key_json = {to_json} WHERE key IS NOT NULL")


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0006_run_error_detail"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="recorderror", name="error_key_idx"),
        migrations.AddField(model_name="recorderror", name="key_json", field=models.JSONField(blank=True, null=True)),
        migrations.RunPython(copy_keys, migrations.RunPython.noop),
        migrations.RemoveField(model_name="recorderror", name="key"),
        migrations.RenameField(model_name="recorderror", old_name="key_json", new_name="key"),
        migrations.AddField(model_name="syncbatch", name="staged", field=models.PositiveIntegerField(default=0)),
        migrations.DeleteModel(name="StagedDelete"),
    ]
