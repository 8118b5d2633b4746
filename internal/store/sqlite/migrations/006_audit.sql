-- The admin audit log (Search-AdminAuditLog): every change an admin made.
CREATE TABLE admin_audit_log (
	id          INTEGER PRIMARY KEY,
	org_id      INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	caller      TEXT NOT NULL,
	cmdlet      TEXT NOT NULL,
	parameters  TEXT NOT NULL,     -- as typed, secrets replaced by ********
	object      TEXT NOT NULL,
	succeeded   INTEGER NOT NULL,
	error       TEXT NOT NULL
);
CREATE INDEX admin_audit_log_by_time ON admin_audit_log (org_id, at);
