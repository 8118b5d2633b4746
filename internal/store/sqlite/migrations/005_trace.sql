-- Message trace and the connection log (issue 6).

-- Trace queries pick messages by organization and time, by sender, by
-- Message-ID, or by recipient through their events and queue items.
-- Addresses compare without case.
CREATE INDEX messages_by_time ON messages (org_id, received_at);
CREATE INDEX messages_by_from ON messages (org_id, envelope_from COLLATE NOCASE, received_at);
CREATE INDEX messages_by_message_id ON messages (message_id);
CREATE INDEX trace_events_by_recipient ON trace_events (recipient COLLATE NOCASE, message);
CREATE INDEX queue_by_recipient ON queue (recipient COLLATE NOCASE);

-- Refusals before a message was accepted: failed AUTH, relay and Direct
-- Send refusals, unknown recipients. Written in batches, off the SMTP path.
CREATE TABLE connection_log (
	id         INTEGER PRIMARY KEY,
	at         INTEGER NOT NULL,
	client_ip  TEXT NOT NULL,
	role       TEXT NOT NULL,
	event      TEXT NOT NULL,
	sign_in    TEXT NOT NULL,
	sender     TEXT NOT NULL,
	recipient  TEXT NOT NULL,
	reply      TEXT NOT NULL,
	detail     TEXT NOT NULL
);
CREATE INDEX connection_log_by_time ON connection_log (at);
