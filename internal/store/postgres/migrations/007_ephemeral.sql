-- Short-lived state of the front ends (store.Ephemeral): the admin
-- center's sessions, one-time sign-in links and OpenID Connect sign-ins
-- in progress, under a digest of the browser's secret, shared by every
-- node so that a browser may reach any of them.
CREATE TABLE ephemeral (
	kind    TEXT NOT NULL,
	key     BYTEA NOT NULL,
	value   BYTEA NOT NULL,
	expires BIGINT NOT NULL,  -- Unix nanoseconds
	PRIMARY KEY (kind, key)
);
CREATE INDEX ephemeral_expiry ON ephemeral(kind, expires);
