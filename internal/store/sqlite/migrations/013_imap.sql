-- IMAP4 over the mail store (issue 13).
--
-- Every folder gets the state RFC 9051 section 2.3.1.1 asks for: a
-- UIDVALIDITY set once when the folder is created (a folder created later
-- under a name that existed before gets a greater one), the next UID, and
-- the highest MODSEQ (RFC 7162's counter, bumped by every change to the
-- folder: new item, flag change, expunge), which IMAP sessions compare to
-- learn cheaply whether anything changed.
ALTER TABLE folders ADD COLUMN uid_validity INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folders ADD COLUMN uid_next INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folders ADD COLUMN highest_modseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folders ADD COLUMN subscribed INTEGER NOT NULL DEFAULT 1;

-- Per item: its UID (strictly ascending per folder, assigned in the
-- transaction that files the item), flags (system flags as bits: 1 \Seen,
-- 2 \Answered, 4 \Flagged, 8 \Deleted, 16 \Draft; keywords as a
-- space-separated list), the MODSEQ of its last change, and its size
-- (copied from the message, so that listing a 100,000-item folder reads
-- one table).
ALTER TABLE folder_items ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folder_items ADD COLUMN sysflags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE folder_items ADD COLUMN keywords TEXT NOT NULL DEFAULT '';
ALTER TABLE folder_items ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folder_items ADD COLUMN size INTEGER NOT NULL DEFAULT 0;

-- Messages put into a folder by an IMAP client (APPEND) were never
-- received: message trace does not show them.
ALTER TABLE messages ADD COLUMN appended INTEGER NOT NULL DEFAULT 0;

-- Existing folders: one UIDVALIDITY for now (names differ within a
-- mailbox), UIDs in the order the items were filed.
UPDATE folders SET uid_validity = CAST(strftime('%s', 'now') AS INTEGER);
UPDATE folder_items SET uid = n.rn
	FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY folder_id ORDER BY received_at, id) AS rn FROM folder_items) AS n
	WHERE folder_items.id = n.id;
UPDATE folder_items SET size = (SELECT m.size FROM messages m WHERE m.id = folder_items.message);
-- What a submission filed in Sent Items was read by its sender.
UPDATE folder_items SET sysflags = 1 WHERE folder_id IN (SELECT id FROM folders WHERE type = 'SentItems');
UPDATE folders SET uid_next = 1 + COALESCE((SELECT MAX(uid) FROM folder_items WHERE folder_id = folders.id), 0);

CREATE UNIQUE INDEX folder_items_by_uid ON folder_items (folder_id, uid);
CREATE INDEX folder_items_by_modseq ON folder_items (folder_id, modseq);

-- Expunged UIDs with the MODSEQ of their expunge, so that a session learns
-- what vanished since the MODSEQ it knows (like RFC 7162's VANISHED)
-- without listing the folder.
CREATE TABLE folder_expunged (
	folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
	uid       INTEGER NOT NULL,
	modseq    INTEGER NOT NULL,
	PRIMARY KEY (folder_id, modseq, uid)
) WITHOUT ROWID;
