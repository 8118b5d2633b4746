-- Per-mailbox sending counters shared by every node (limits.Sending):
-- one row per mailbox and minute (Unix time / 60). recipients_* count the
-- recipients submitted in that minute (the 10,000-per-24-hours recipient
-- rate limit and the outbound spam policy's hourly limits sum them);
-- released counts the messages paced to be released in that minute (30 a
-- minute). Rows older than a day are swept.
CREATE TABLE send_counts (
	mailbox_id          BIGINT NOT NULL,
	minute              BIGINT NOT NULL,
	recipients_internal INTEGER NOT NULL DEFAULT 0,
	recipients_external INTEGER NOT NULL DEFAULT 0,
	released            INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (mailbox_id, minute)
);

-- postern_reserve_send records a submission of n_int + n_ext recipients by
-- a mailbox at minute now_min, paces it to the first minute from now_min
-- on with fewer than rate releases (release minutes of a mailbox never go
-- backwards), and returns the mailbox's counts before this submission
-- (last 1440 and 60 minutes) and the release minute: one round trip per
-- message. A transaction-scoped advisory lock on the mailbox (two-key
-- form, class 1, apart from the migrations' one-key lock) makes the
-- reservations of one mailbox, from any node, run one at a time, also
-- across a minute's boundary. The counters are committed without waiting
-- for the WAL flush (synchronous_commit off for this transaction only):
-- they are visible to every node at commit all the same, and a database
-- crash can lose only the last moment's counts, whereas waiting would
-- double the disk flushes a submission costs. The message itself is
-- committed durably, as ever.
CREATE FUNCTION postern_reserve_send(mb BIGINT, now_min BIGINT, n_int INTEGER, n_ext INTEGER, rate INTEGER,
	OUT day_internal BIGINT, OUT day_external BIGINT, OUT hour_internal BIGINT, OUT hour_external BIGINT, OUT release_min BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
	last_min BIGINT;
	last_n   INTEGER;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pg_advisory_xact_lock(1, hashint8(mb));
	INSERT INTO send_counts (mailbox_id, minute, recipients_internal, recipients_external)
		VALUES (mb, now_min, n_int, n_ext)
		ON CONFLICT (mailbox_id, minute) DO UPDATE
		SET recipients_internal = send_counts.recipients_internal + n_int,
		    recipients_external = send_counts.recipients_external + n_ext;
	SELECT COALESCE(SUM(recipients_internal), 0) - n_int, COALESCE(SUM(recipients_external), 0) - n_ext,
	       COALESCE(SUM(recipients_internal) FILTER (WHERE minute > now_min - 60), 0) - n_int,
	       COALESCE(SUM(recipients_external) FILTER (WHERE minute > now_min - 60), 0) - n_ext
		INTO day_internal, day_external, hour_internal, hour_external
		FROM send_counts WHERE mailbox_id = mb AND minute > now_min - 1440 AND minute <= now_min;
	SELECT minute, released INTO last_min, last_n FROM send_counts
		WHERE mailbox_id = mb AND released > 0 ORDER BY minute DESC LIMIT 1;
	IF last_min IS NULL OR last_min < now_min THEN
		release_min := now_min;
	ELSIF last_n < rate THEN
		release_min := last_min;
	ELSE
		release_min := last_min + 1;
	END IF;
	INSERT INTO send_counts (mailbox_id, minute, released) VALUES (mb, release_min, 1)
		ON CONFLICT (mailbox_id, minute) DO UPDATE SET released = send_counts.released + 1;
END;
$$;
