-- Outbound delivery (issue 4): leases on queue items, delay notices,
-- outbound connectors, DKIM keys and message trace events.

-- A delivery worker leases the items it is working on, so that no two
-- workers (or nodes) deliver the same copy; a lease left by a crash expires,
-- or is released when the same node starts again.
ALTER TABLE queue ADD COLUMN leased_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN leased_by TEXT NOT NULL DEFAULT '';
-- Set once a delay notice has gone to the sender, so only one goes.
ALTER TABLE queue ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;

CREATE TABLE outbound_connectors (
	id               INTEGER PRIMARY KEY,
	org_id           INTEGER NOT NULL REFERENCES organizations(id),
	name             TEXT NOT NULL COLLATE NOCASE,
	connector_type   TEXT NOT NULL,
	recipient_domains TEXT NOT NULL,          -- JSON array
	smart_hosts      TEXT NOT NULL,           -- JSON array
	use_mx_record    INTEGER NOT NULL,
	tls_settings     TEXT NOT NULL,
	tls_domain       TEXT NOT NULL,
	enabled          INTEGER NOT NULL,
	comment          TEXT NOT NULL,
	auth_mechanism   TEXT NOT NULL,
	smtp_user        TEXT NOT NULL,
	smtp_password    TEXT NOT NULL,           -- sealed (internal/secret)
	oauth_token_endpoint TEXT NOT NULL,
	oauth_client_id  TEXT NOT NULL,
	oauth_client_secret TEXT NOT NULL,        -- sealed
	oauth_scope      TEXT NOT NULL,
	when_created     INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE dkim_signing_configs (
	id               INTEGER PRIMARY KEY,
	org_id           INTEGER NOT NULL REFERENCES organizations(id),
	domain           TEXT NOT NULL UNIQUE,
	enabled          INTEGER NOT NULL,
	algorithm        TEXT NOT NULL,
	key_size         INTEGER NOT NULL,
	active_selector  INTEGER NOT NULL,
	selector1_key    TEXT NOT NULL,           -- sealed PKCS#8 PEM
	selector2_key    TEXT NOT NULL,           -- sealed PKCS#8 PEM
	selector1_public TEXT NOT NULL,
	selector2_public TEXT NOT NULL,
	key_creation_time INTEGER NOT NULL,
	rotate_on_date   INTEGER NOT NULL,
	when_created     INTEGER NOT NULL
);

-- What happened to each message, for message trace: Receive, Deliver
-- (into a local mailbox), Send (accepted by a remote server), Defer, Fail,
-- DSN (a notification went to the sender) and Drop (removed by an admin).
CREATE TABLE trace_events (
	id          INTEGER PRIMARY KEY,
	message     INTEGER NOT NULL REFERENCES messages(id),
	at          INTEGER NOT NULL,
	event       TEXT NOT NULL,
	recipient   TEXT NOT NULL,
	detail      TEXT NOT NULL,
	remote_host TEXT NOT NULL
);
CREATE INDEX trace_events_by_message ON trace_events (message, id);
CREATE INDEX trace_events_by_time ON trace_events (at);
