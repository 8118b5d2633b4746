-- Postern's embedded schema. Times are Unix nanoseconds (UTC); lists are JSON.

CREATE TABLE organizations (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
	guid          TEXT NOT NULL,
	smtp_client_authentication_disabled INTEGER NOT NULL,
	security_defaults_enabled           INTEGER NOT NULL,
	default_authentication_policy       TEXT NOT NULL DEFAULT '',
	when_created  INTEGER NOT NULL
);

CREATE TABLE accepted_domains (
	id           INTEGER PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES organizations(id),
	name         TEXT NOT NULL,
	domain_name  TEXT NOT NULL UNIQUE,
	domain_type  TEXT NOT NULL,
	is_default   INTEGER NOT NULL,
	when_created INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE authentication_policies (
	id                    INTEGER PRIMARY KEY,
	org_id                INTEGER NOT NULL REFERENCES organizations(id),
	name                  TEXT NOT NULL COLLATE NOCASE,
	allow_basic_auth_smtp INTEGER NOT NULL,
	when_created          INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE mailboxes (
	id              INTEGER PRIMARY KEY,
	org_id          INTEGER NOT NULL REFERENCES organizations(id),
	guid            TEXT NOT NULL,
	name            TEXT NOT NULL COLLATE NOCASE,
	display_name    TEXT NOT NULL,
	alias           TEXT NOT NULL,
	primary_smtp_address TEXT NOT NULL,
	user_principal_name  TEXT NOT NULL UNIQUE,
	email_addresses TEXT NOT NULL,          -- JSON array of proxy addresses
	type            TEXT NOT NULL,
	password_hash   TEXT NOT NULL,
	smtp_client_authentication_disabled INTEGER, -- NULL inherits the organization's
	authentication_policy TEXT NOT NULL,
	recipient_limits INTEGER NOT NULL,
	max_send_size    INTEGER NOT NULL,
	max_receive_size INTEGER NOT NULL,
	grant_send_on_behalf_to TEXT NOT NULL,  -- JSON array of mailbox IDs
	when_created    INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

-- Every address of every mailbox, so that no address is ever owned twice.
CREATE TABLE addresses (
	address    TEXT PRIMARY KEY,
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE
);

CREATE TABLE recipient_permissions (
	id       INTEGER PRIMARY KEY,
	org_id   INTEGER NOT NULL REFERENCES organizations(id),
	identity INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	trustee  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	UNIQUE (identity, trustee)
);

CREATE TABLE messages (
	id            INTEGER PRIMARY KEY,
	org_id        INTEGER NOT NULL,
	message_id    TEXT NOT NULL,
	subject       TEXT NOT NULL,
	received_at   INTEGER NOT NULL,
	envelope_from TEXT NOT NULL,
	auth_mailbox  INTEGER,                  -- NULL for anonymous mail
	client_ip     TEXT NOT NULL,
	recipients    INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	body          BLOB NOT NULL
);
CREATE INDEX messages_by_sender ON messages (auth_mailbox, received_at) WHERE auth_mailbox IS NOT NULL;

CREATE TABLE folders (
	id         INTEGER PRIMARY KEY,
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	type       TEXT NOT NULL,
	UNIQUE (mailbox_id, name)
);

CREATE TABLE folder_items (
	id          INTEGER PRIMARY KEY,
	folder_id   INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
	message     INTEGER NOT NULL REFERENCES messages(id),
	received_at INTEGER NOT NULL
);
CREATE INDEX folder_items_by_folder ON folder_items (folder_id, received_at);
CREATE INDEX folder_items_by_message ON folder_items (message);

-- Delivery work not done at commit time: paced local deliveries and every
-- outbound recipient.
CREATE TABLE queue (
	id         INTEGER PRIMARY KEY,
	message    INTEGER NOT NULL REFERENCES messages(id),
	recipient  TEXT NOT NULL,
	mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE, -- set for local deliveries
	folder     TEXT NOT NULL,
	not_before INTEGER NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT ''
);
-- Paced local deliveries and outbound work are polled separately, so each
-- poll reads only its own due rows.
CREATE INDEX queue_local_due ON queue (not_before) WHERE mailbox_id IS NOT NULL;
CREATE INDEX queue_remote_due ON queue (not_before) WHERE mailbox_id IS NULL;
CREATE INDEX queue_by_message ON queue (message);
