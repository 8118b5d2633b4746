-- Small message bodies in append-only segment files (segments.go).
--
-- A message the group committer stores from memory no longer goes into
-- message_bodies: its session appends it to the current segment file,
-- DATA/bodies/NNNNNNNNNN.seg, and the row says where. In message_bodies a
-- 10 KiB body took three overflow pages, each written to the WAL at commit
-- and again into the database file at checkpoint; in a segment it is one
-- write, synced beside the commit rather than copied twice inside it.
--
-- body_seg names the segment (NULL: the body is in message_bodies or
-- body_file, as before), body_off the offset of the message's first byte;
-- the body is the message's size long. body_crc is its CRC-32C
-- (Castagnoli): start-up checks the newest bodies with it, and a backup
-- checks every body it copies.
ALTER TABLE messages ADD COLUMN body_seg INTEGER;
ALTER TABLE messages ADD COLUMN body_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN body_crc INTEGER NOT NULL DEFAULT 0;

-- live counts the unreleased bodies in each segment: a segment whose count
-- falls to zero (and that is no longer written to) is removed.
CREATE TABLE body_segments (
	seq  INTEGER PRIMARY KEY,
	live INTEGER NOT NULL
);
