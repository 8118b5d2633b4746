-- Message bodies in files, and their retention (issue 11).

-- A new message's body is in message_bodies: the whole message when it is
-- small, or the header fields Postern added in front of a large one, whose
-- rest is the file body_file under DATA/bodies. Rows from before this
-- migration keep their whole body in messages.body (new rows store x'').
-- Bodies are a table of their own so that releasing one is a DELETE: the
-- pages it held are freed (an UPDATE shrinking a row in place leaves its
-- page mostly empty, and the messages table bloated, for as long as the
-- metadata is kept for message trace).
CREATE TABLE message_bodies (
	message INTEGER PRIMARY KEY REFERENCES messages(id),
	data    BLOB NOT NULL
);
ALTER TABLE messages ADD COLUMN body_file TEXT;
-- Set once nothing refers to the message any more: its body is gone, its
-- metadata stays for message trace until trace retention removes it.
ALTER TABLE messages ADD COLUMN body_released INTEGER NOT NULL DEFAULT 0;

-- Start-up compares the body files on disk with these (orphans from a crash
-- between writing a file and committing its row are removed).
CREATE INDEX messages_body_files ON messages (body_file) WHERE body_file IS NOT NULL;
-- Trace retention removes released messages oldest first, in small batches.
CREATE INDEX messages_released ON messages (received_at) WHERE body_released = 1;

-- Messages that nothing refers to already (delivered or failed relay mail,
-- removed mailboxes) give their bodies back now.
UPDATE messages SET body = x'', body_released = 1
	WHERE NOT EXISTS (SELECT 1 FROM folder_items i WHERE i.message = messages.id)
	  AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message = messages.id);
