-- The SMTP session that submitted a message: shown in the message trace
-- and written on every log line of that session (README "Metrics and health").
ALTER TABLE messages ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
