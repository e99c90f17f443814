"""Live patterns per (project, embedding model), kept by triggers on the pattern table.

Recall picked exact search or HNSW by counting the scope's rows up to the threshold in every
statement; in a project holding most of the table that count read thousands of rows a call.
The triggers keep the count in the same transaction as the change: inserts and deletes
(statement triggers over their transition tables, so a COPY of 100k rows is one update), and
archive, unarchive, model or project changes (a row trigger that fires only when one of those
changes). TRUNCATE empties the counts. The counts are backfilled with the triggers already in
place: CREATE TRIGGER locks out writes until this migration commits.
"""

from django.db import migrations, models

UPSERT = """
    INSERT INTO memory_scopesize AS s (project_id, embedding_model, live_rows)
    {rows}
    ON CONFLICT (project_id, embedding_model)
    DO UPDATE SET live_rows = s.live_rows + excluded.live_rows
"""

FORWARD = f"""
CREATE FUNCTION memory_scope_size_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {UPSERT.format(rows='''SELECT project_id, embedding_model, count(*) FROM new_rows
    WHERE NOT archived GROUP BY project_id, embedding_model ORDER BY 1, 2''')};
    RETURN NULL;
END $$;

CREATE FUNCTION memory_scope_size_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {UPSERT.format(rows='''SELECT project_id, embedding_model, -count(*) FROM old_rows
    WHERE NOT archived GROUP BY project_id, embedding_model ORDER BY 1, 2''')};
    RETURN NULL;
END $$;

CREATE FUNCTION memory_scope_size_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT OLD.archived THEN
        {UPSERT.format(rows="VALUES (OLD.project_id, OLD.embedding_model, -1)")};
    END IF;
    IF NOT NEW.archived THEN
        {UPSERT.format(rows="VALUES (NEW.project_id, NEW.embedding_model, 1)")};
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION memory_scope_size_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memory_scopesize;
    RETURN NULL;
END $$;

CREATE TRIGGER memory_pattern_scope_insert AFTER INSERT ON memory_pattern
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_scope_size_insert();
CREATE TRIGGER memory_pattern_scope_delete AFTER DELETE ON memory_pattern
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION memory_scope_size_delete();
CREATE TRIGGER memory_pattern_scope_update
    AFTER UPDATE OF archived, embedding_model, project_id ON memory_pattern
    FOR EACH ROW WHEN (
        OLD.archived IS DISTINCT FROM NEW.archived
        OR OLD.embedding_model IS DISTINCT FROM NEW.embedding_model
        OR OLD.project_id IS DISTINCT FROM NEW.project_id
    ) EXECUTE FUNCTION memory_scope_size_update();
CREATE TRIGGER memory_pattern_scope_truncate AFTER TRUNCATE ON memory_pattern
    FOR EACH STATEMENT EXECUTE FUNCTION memory_scope_size_truncate();

INSERT INTO memory_scopesize (project_id, embedding_model, live_rows)
SELECT project_id, embedding_model, count(*) FROM memory_pattern
WHERE NOT archived GROUP BY project_id, embedding_model;
"""

BACKWARD = """
DROP TRIGGER memory_pattern_scope_insert ON memory_pattern;
DROP TRIGGER memory_pattern_scope_delete ON memory_pattern;
DROP TRIGGER memory_pattern_scope_update ON memory_pattern;
DROP TRIGGER memory_pattern_scope_truncate ON memory_pattern;
DROP FUNCTION memory_scope_size_insert();
DROP FUNCTION memory_scope_size_delete();
DROP FUNCTION memory_scope_size_update();
DROP FUNCTION memory_scope_size_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0008_recall_stat_and_pattern_stats"),
        ("tenants", "0003_project_llm"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScopeSize",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("embedding_model", models.CharField(max_length=100)),
                ("live_rows", models.BigIntegerField(default=0)),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="tenants.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("project", "embedding_model"), name="scope_size_one_per_model"
                    )
                ]
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
