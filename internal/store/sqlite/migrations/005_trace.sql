-- Message trace and the connection log (issue 6).

-- Trace queries pick messages by organization and time first.
CREATE INDEX messages_by_time ON messages (org_id, received_at);
-- ... or by recipient, through their events.
CREATE INDEX trace_events_by_recipient ON trace_events (recipient, message);

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
