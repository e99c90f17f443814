# ImportUpload becomes jobs.Upload (content a job reads); its table is kept and renamed there.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("memory", "0006_staged_embedding_kind_registered"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ImportUpload")],
            database_operations=[],
        ),
    ]
