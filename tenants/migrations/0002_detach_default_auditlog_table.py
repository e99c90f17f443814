"""Detach django-auditlog's default table, unused because AUDITLOG_LOGENTRY_MODEL is ours.

auditlog's own migrations still create auditlog_logentry with foreign keys to users and content
types; nothing writes to it, but those keys make a database flush (used by transactional tests)
fail. Dropping the keys leaves the empty table inert.
"""

from django.db import migrations

DROP_FOREIGN_KEYS = """
DO $$
DECLARE r record;
BEGIN
  IF to_regclass('auditlog_logentry') IS NOT NULL THEN
    FOR r IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'auditlog_logentry'::regclass AND contype = 'f' LOOP
      EXECUTE 'ALTER TABLE auditlog_logentry DROP CONSTRAINT ' || quote_ident(r.conname);
    END LOOP;
  END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial"), ("auditlog", "0017_add_actor_email")]

    operations = [migrations.RunSQL(DROP_FOREIGN_KEYS, migrations.RunSQL.noop)]
