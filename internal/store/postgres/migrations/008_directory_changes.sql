-- The directory change log and per-row change notifications.
--
-- Every row a statement inserts, updates or deletes in a table the
-- directory snapshot is built from is logged as (table, row ID), by
-- triggers, whatever made the change (a Save*, a Delete*, a cascade from a
-- removed mailbox, postern migrate). The node that made a change reads the
-- log after it (store.DirectoryChanges) and applies only the changed rows.
-- Sequence values are taken before commit, so with several writers a lower
-- seq may commit after a higher one a reader has seen: the log alone could
-- miss it. The other nodes therefore learn of changes from the
-- notifications, which PostgreSQL delivers after commit, in commit order:
-- for the tables a snapshot applies row by row (directory.Key.Incremental)
-- the payload is "table:id", one per changed row (PostgreSQL folds the
-- identical payloads of one transaction); the other tables keep migration
-- 005's one notification per statement naming the table, which makes the
-- listeners read everything again. A bulk change makes many small
-- notifications, never one over NOTIFY's 8000-byte payload limit; the
-- listener turns too many into one full read.
CREATE TABLE directory_changes (
	seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tbl    TEXT NOT NULL,
	row_id BIGINT NOT NULL
);
-- The log keeps the last 10,000 changes: every 1,000th change prunes the
-- older ones and records through which seq it did; a reader behind that
-- reads the whole directory again.
CREATE TABLE directory_changes_pruned (through BIGINT NOT NULL);
INSERT INTO directory_changes_pruned (through) VALUES (0);

CREATE FUNCTION postern_directory_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	rid BIGINT;
	s   BIGINT;
BEGIN
	IF TG_OP = 'DELETE' THEN
		rid := (to_jsonb(OLD) ->> TG_ARGV[0])::BIGINT;
	ELSE
		rid := (to_jsonb(NEW) ->> TG_ARGV[0])::BIGINT;
	END IF;
	INSERT INTO directory_changes (tbl, row_id) VALUES (TG_TABLE_NAME, rid) RETURNING seq INTO s;
	IF s % 1000 = 0 THEN
		DELETE FROM directory_changes WHERE seq <= s - 10000;
		UPDATE directory_changes_pruned SET through = greatest(through, s - 10000);
	END IF;
	IF TG_ARGV[1] = 'notify' THEN
		PERFORM pg_notify('postern_directory', TG_TABLE_NAME || ':' || rid);
	END IF;
	RETURN NULL;
END;
$$;

DO $$
DECLARE
	t TEXT;
BEGIN
	FOREACH t IN ARRAY ARRAY['organizations', 'mailboxes', 'recipient_permissions', 'mailbox_permissions',
		'restricted_senders'] LOOP
		EXECUTE format('DROP TRIGGER %I ON %I', t || '_notify', t);
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
			FOR EACH ROW EXECUTE FUNCTION postern_directory_row_changed(%L, %L)', t || '_log', t, 'id', 'notify');
		-- TRUNCATE has no rows: it still makes everyone read everything.
		EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
			FOR EACH STATEMENT EXECUTE FUNCTION postern_directory_changed()', t || '_notify', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['accepted_domains', 'authentication_policies', 'inbound_connectors',
		'outbound_connectors', 'dkim_signing_configs', 'auth_servers', 'service_principals', 'oauth_apps'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
			FOR EACH ROW EXECUTE FUNCTION postern_directory_row_changed(%L, %L)', t || '_log', t, 'id', 'log');
	END LOOP;
	FOREACH t IN ARRAY ARRAY['outbound_spam_policies', 'connection_filter_policies'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
			FOR EACH ROW EXECUTE FUNCTION postern_directory_row_changed(%L, %L)', t || '_log', t, 'org_id', 'log');
	END LOOP;
END;
$$;
