-- Modern authentication for SMTP AUTH (issue 5).

ALTER TABLE organizations ADD COLUMN smtp_basic_auth_disabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE auth_servers (
	id                INTEGER PRIMARY KEY,
	org_id            INTEGER NOT NULL REFERENCES organizations(id),
	name              TEXT NOT NULL COLLATE NOCASE,
	auth_metadata_url TEXT NOT NULL,
	issuer            TEXT NOT NULL,
	jwks_uri          TEXT NOT NULL,
	token_endpoint    TEXT NOT NULL,
	audience          TEXT NOT NULL,
	user_claims       TEXT NOT NULL,       -- JSON array
	enabled           INTEGER NOT NULL,
	built_in          INTEGER NOT NULL,
	when_created      INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

CREATE TABLE service_principals (
	id           INTEGER PRIMARY KEY,
	org_id       INTEGER NOT NULL REFERENCES organizations(id),
	app_id       TEXT NOT NULL COLLATE NOCASE,
	object_id    TEXT NOT NULL COLLATE NOCASE,
	display_name TEXT NOT NULL,
	when_created INTEGER NOT NULL,
	UNIQUE (org_id, app_id),
	UNIQUE (org_id, object_id)
);

CREATE TABLE mailbox_permissions (
	id                INTEGER PRIMARY KEY,
	org_id            INTEGER NOT NULL REFERENCES organizations(id),
	identity          INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	trustee_principal INTEGER REFERENCES service_principals(id) ON DELETE CASCADE,
	trustee_mailbox   INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,
	UNIQUE (identity, trustee_principal, trustee_mailbox)
);

CREATE TABLE oauth_apps (
	id            INTEGER PRIMARY KEY,
	org_id        INTEGER NOT NULL REFERENCES organizations(id),
	name          TEXT NOT NULL COLLATE NOCASE,
	app_id        TEXT NOT NULL UNIQUE,
	secret_hashes TEXT NOT NULL,           -- JSON array of argon2id hashes
	certificates  TEXT NOT NULL,           -- JSON array of PEM certificates
	when_created  INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

-- The built-in issuer's signing keys, newest first in use; older ones stay
-- published until the tokens they signed have expired.
CREATE TABLE issuer_keys (
	id          INTEGER PRIMARY KEY,
	kid         TEXT NOT NULL UNIQUE,
	private_key TEXT NOT NULL,             -- sealed PKCS#8 PEM
	created     INTEGER NOT NULL
);

-- How each message was submitted, for the SMTP AUTH clients report.
ALTER TABLE messages ADD COLUMN auth_protocol TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN tls_version TEXT NOT NULL DEFAULT '';
