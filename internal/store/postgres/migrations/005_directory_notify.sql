-- Directory change notifications: every statement that changes a table the
-- directory snapshot is built from sends NOTIFY postern_directory with the
-- table's name, in the changing transaction. PostgreSQL delivers a NOTIFY
-- only when (and if) its transaction commits, and folds identical payloads
-- of one transaction into one, so listeners on every node hear each
-- committed change once per table, after it is visible, whichever
-- statement (a Save*, a Delete*, a cascade, postern migrate) made it.
CREATE FUNCTION postern_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('postern_directory', TG_TABLE_NAME);
	RETURN NULL;
END;
$$;

DO $$
DECLARE
	t TEXT;
BEGIN
	FOREACH t IN ARRAY ARRAY['organizations', 'accepted_domains', 'authentication_policies', 'mailboxes',
		'recipient_permissions', 'inbound_connectors', 'outbound_connectors', 'dkim_signing_configs',
		'auth_servers', 'service_principals', 'mailbox_permissions', 'oauth_apps',
		'outbound_spam_policies', 'connection_filter_policies', 'restricted_senders'] LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
			FOR EACH STATEMENT EXECUTE FUNCTION postern_directory_changed()', t || '_notify', t);
	END LOOP;
END;
$$;
