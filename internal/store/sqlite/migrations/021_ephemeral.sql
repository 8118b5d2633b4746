-- Short-lived state of the front ends (store.Ephemeral): the admin
-- center's sessions, one-time sign-in links and OpenID Connect sign-ins
-- in progress, under a digest of the browser's secret.
CREATE TABLE ephemeral (
	kind    TEXT NOT NULL,
	key     BLOB NOT NULL,
	value   BLOB NOT NULL,
	expires INTEGER NOT NULL,  -- Unix nanoseconds
	PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX ephemeral_expiry ON ephemeral(kind, expires);
