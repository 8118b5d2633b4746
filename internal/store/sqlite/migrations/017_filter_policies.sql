-- Outbound spam policy, connection filtering and restricted senders
-- (issue 15). Each organization has one policy of each kind, Default; a
-- row exists once an admin changed it (no row: Exchange's defaults).

-- Set-HostedOutboundSpamFilterPolicy: limits of 0 use the service
-- defaults; the action when a limit is exceeded.
CREATE TABLE outbound_spam_policies (
	org_id                  INTEGER PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
	external_per_hour       INTEGER NOT NULL DEFAULT 0,
	internal_per_hour       INTEGER NOT NULL DEFAULT 0,
	per_day                 INTEGER NOT NULL DEFAULT 0,
	action                  TEXT NOT NULL DEFAULT 'BlockUserForToday',
	when_changed            INTEGER NOT NULL
);

-- Set-HostedConnectionFilterPolicy: the IP Allow and Block Lists, one
-- entry per line as Get- shows them.
CREATE TABLE connection_filter_policies (
	org_id        INTEGER PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
	ip_allow_list TEXT NOT NULL DEFAULT '',
	ip_block_list TEXT NOT NULL DEFAULT '',
	when_changed  INTEGER NOT NULL
);

-- The restricted entities list (Get-/Remove-BlockedSenderAddress): one row
-- per mailbox the outbound spam policy blocked; released_at is set when an
-- admin releases it (kept: a released user is not restricted again that
-- day), expires_at ends a BlockUserForToday restriction (0: never).
CREATE TABLE restricted_senders (
	id             INTEGER PRIMARY KEY,
	org_id         INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
	mailbox_id     INTEGER NOT NULL UNIQUE REFERENCES mailboxes(id) ON DELETE CASCADE,
	sender_address TEXT NOT NULL,
	reason         TEXT NOT NULL,
	action         TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL DEFAULT 0,
	released_at    INTEGER NOT NULL DEFAULT 0
);

-- The outbound spam policy's hourly limits count external and internal
-- recipients apart; the counters are rebuilt from here after a restart.
ALTER TABLE messages ADD COLUMN external_recipients INTEGER NOT NULL DEFAULT 0;
