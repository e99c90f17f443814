"""Keep vectors inline in the row (STORAGE MAIN) instead of letting TOAST move them out of line.

A 384-d vector is ~1.5 kB; next to a long task or solution the row passes TOAST's threshold and
the vector, the widest column, was moved out of line, so exact search detoasted every row.
Measured with bench/recall.py: 2-3x cheaper exact search per row with MAIN. Long text columns
are still compressed and moved out first. Existing rows move on their next rewrite.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("memory", "0003_importupload")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE memory_pattern ALTER COLUMN embedding SET STORAGE MAIN; "
            "ALTER TABLE memory_chunk ALTER COLUMN embedding SET STORAGE MAIN;",
            "ALTER TABLE memory_pattern ALTER COLUMN embedding SET STORAGE EXTENDED; "
            "ALTER TABLE memory_chunk ALTER COLUMN embedding SET STORAGE EXTENDED;",
        )
    ]
