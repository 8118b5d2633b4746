-- Message bodies in files, and their retention (issue 11).

-- A large message's body is a file under DATA/bodies; body then holds only
-- the header fields Postern added in front of it. Small messages (and rows
-- from before this migration) keep the whole body in the body column.
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
