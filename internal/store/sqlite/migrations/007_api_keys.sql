-- API keys: the REST API's admin sign-in (New-ApiKey). Only a SHA-256 of
-- each key is kept; the key itself is shown once, when it is created.
CREATE TABLE api_keys (
	id          INTEGER PRIMARY KEY,
	org_id      INTEGER NOT NULL REFERENCES organizations(id),
	name        TEXT NOT NULL,
	role        TEXT NOT NULL,
	key_hash    BLOB NOT NULL UNIQUE,
	key_prefix  TEXT NOT NULL,     -- the key's first characters, to tell keys apart
	created     INTEGER NOT NULL,
	last_used   INTEGER NOT NULL DEFAULT 0,
	UNIQUE (org_id, name COLLATE NOCASE)
);
