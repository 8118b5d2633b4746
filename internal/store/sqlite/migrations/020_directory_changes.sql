-- The directory change log: every row a statement inserts, updates or
-- deletes in a table the directory snapshot is built from is logged as
-- (table, row ID), by triggers, so that whatever made the change (a Save*,
-- a Delete*, a cascade from a removed mailbox, postern migrate) the admin
-- service can read only what changed since the snapshot it holds and apply
-- it incrementally (store.DirectoryChanges, directory.Delta). SQLite has one
-- writer at a time, so seq order is commit order: reading "after the
-- snapshot's position" misses nothing. Tables keyed by organization log the
-- organization's ID.
CREATE TABLE directory_changes (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	tbl    TEXT NOT NULL,
	row_id INTEGER NOT NULL
);
-- The log keeps the last 10,000 changes: every 1,000th change prunes the
-- older ones and records through which seq it did; a reader behind that
-- reads the whole directory again.
CREATE TABLE directory_changes_pruned (through INTEGER NOT NULL);
INSERT INTO directory_changes_pruned (through) VALUES (0);
CREATE TRIGGER directory_changes_prune AFTER INSERT ON directory_changes WHEN NEW.seq % 1000 = 0
BEGIN
	DELETE FROM directory_changes WHERE seq <= NEW.seq - 10000;
	UPDATE directory_changes_pruned SET through = max(through, NEW.seq - 10000);
END;

CREATE TRIGGER organizations_log_insert AFTER INSERT ON organizations BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('organizations', NEW.id); END;
CREATE TRIGGER organizations_log_update AFTER UPDATE ON organizations BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('organizations', NEW.id); END;
CREATE TRIGGER organizations_log_delete AFTER DELETE ON organizations BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('organizations', OLD.id); END;
CREATE TRIGGER accepted_domains_log_insert AFTER INSERT ON accepted_domains BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('accepted_domains', NEW.id); END;
CREATE TRIGGER accepted_domains_log_update AFTER UPDATE ON accepted_domains BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('accepted_domains', NEW.id); END;
CREATE TRIGGER accepted_domains_log_delete AFTER DELETE ON accepted_domains BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('accepted_domains', OLD.id); END;
CREATE TRIGGER authentication_policies_log_insert AFTER INSERT ON authentication_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('authentication_policies', NEW.id); END;
CREATE TRIGGER authentication_policies_log_update AFTER UPDATE ON authentication_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('authentication_policies', NEW.id); END;
CREATE TRIGGER authentication_policies_log_delete AFTER DELETE ON authentication_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('authentication_policies', OLD.id); END;
CREATE TRIGGER mailboxes_log_insert AFTER INSERT ON mailboxes BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailboxes', NEW.id); END;
CREATE TRIGGER mailboxes_log_update AFTER UPDATE ON mailboxes BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailboxes', NEW.id); END;
CREATE TRIGGER mailboxes_log_delete AFTER DELETE ON mailboxes BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailboxes', OLD.id); END;
CREATE TRIGGER recipient_permissions_log_insert AFTER INSERT ON recipient_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('recipient_permissions', NEW.id); END;
CREATE TRIGGER recipient_permissions_log_update AFTER UPDATE ON recipient_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('recipient_permissions', NEW.id); END;
CREATE TRIGGER recipient_permissions_log_delete AFTER DELETE ON recipient_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('recipient_permissions', OLD.id); END;
CREATE TRIGGER inbound_connectors_log_insert AFTER INSERT ON inbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('inbound_connectors', NEW.id); END;
CREATE TRIGGER inbound_connectors_log_update AFTER UPDATE ON inbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('inbound_connectors', NEW.id); END;
CREATE TRIGGER inbound_connectors_log_delete AFTER DELETE ON inbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('inbound_connectors', OLD.id); END;
CREATE TRIGGER outbound_connectors_log_insert AFTER INSERT ON outbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_connectors', NEW.id); END;
CREATE TRIGGER outbound_connectors_log_update AFTER UPDATE ON outbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_connectors', NEW.id); END;
CREATE TRIGGER outbound_connectors_log_delete AFTER DELETE ON outbound_connectors BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_connectors', OLD.id); END;
CREATE TRIGGER dkim_signing_configs_log_insert AFTER INSERT ON dkim_signing_configs BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('dkim_signing_configs', NEW.id); END;
CREATE TRIGGER dkim_signing_configs_log_update AFTER UPDATE ON dkim_signing_configs BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('dkim_signing_configs', NEW.id); END;
CREATE TRIGGER dkim_signing_configs_log_delete AFTER DELETE ON dkim_signing_configs BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('dkim_signing_configs', OLD.id); END;
CREATE TRIGGER auth_servers_log_insert AFTER INSERT ON auth_servers BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('auth_servers', NEW.id); END;
CREATE TRIGGER auth_servers_log_update AFTER UPDATE ON auth_servers BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('auth_servers', NEW.id); END;
CREATE TRIGGER auth_servers_log_delete AFTER DELETE ON auth_servers BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('auth_servers', OLD.id); END;
CREATE TRIGGER service_principals_log_insert AFTER INSERT ON service_principals BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('service_principals', NEW.id); END;
CREATE TRIGGER service_principals_log_update AFTER UPDATE ON service_principals BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('service_principals', NEW.id); END;
CREATE TRIGGER service_principals_log_delete AFTER DELETE ON service_principals BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('service_principals', OLD.id); END;
CREATE TRIGGER mailbox_permissions_log_insert AFTER INSERT ON mailbox_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailbox_permissions', NEW.id); END;
CREATE TRIGGER mailbox_permissions_log_update AFTER UPDATE ON mailbox_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailbox_permissions', NEW.id); END;
CREATE TRIGGER mailbox_permissions_log_delete AFTER DELETE ON mailbox_permissions BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('mailbox_permissions', OLD.id); END;
CREATE TRIGGER oauth_apps_log_insert AFTER INSERT ON oauth_apps BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('oauth_apps', NEW.id); END;
CREATE TRIGGER oauth_apps_log_update AFTER UPDATE ON oauth_apps BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('oauth_apps', NEW.id); END;
CREATE TRIGGER oauth_apps_log_delete AFTER DELETE ON oauth_apps BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('oauth_apps', OLD.id); END;
CREATE TRIGGER outbound_spam_policies_log_insert AFTER INSERT ON outbound_spam_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_spam_policies', NEW.org_id); END;
CREATE TRIGGER outbound_spam_policies_log_update AFTER UPDATE ON outbound_spam_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_spam_policies', NEW.org_id); END;
CREATE TRIGGER outbound_spam_policies_log_delete AFTER DELETE ON outbound_spam_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('outbound_spam_policies', OLD.org_id); END;
CREATE TRIGGER connection_filter_policies_log_insert AFTER INSERT ON connection_filter_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('connection_filter_policies', NEW.org_id); END;
CREATE TRIGGER connection_filter_policies_log_update AFTER UPDATE ON connection_filter_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('connection_filter_policies', NEW.org_id); END;
CREATE TRIGGER connection_filter_policies_log_delete AFTER DELETE ON connection_filter_policies BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('connection_filter_policies', OLD.org_id); END;
CREATE TRIGGER restricted_senders_log_insert AFTER INSERT ON restricted_senders BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('restricted_senders', NEW.id); END;
CREATE TRIGGER restricted_senders_log_update AFTER UPDATE ON restricted_senders BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('restricted_senders', NEW.id); END;
CREATE TRIGGER restricted_senders_log_delete AFTER DELETE ON restricted_senders BEGIN INSERT INTO directory_changes (tbl, row_id) VALUES ('restricted_senders', OLD.id); END;
