-- The triggers that keep mailbox_sizes read the size of a filed message
-- from its folder item (set by every insert since migration 013) instead
-- of looking the message up: one b-tree search less per item filed and
-- removed, in the group committer's transaction.
DROP TRIGGER mailbox_sizes_insert;
DROP TRIGGER mailbox_sizes_delete;
DROP TRIGGER mailbox_sizes_move;

CREATE TRIGGER mailbox_sizes_insert AFTER INSERT ON folder_items BEGIN
	INSERT INTO mailbox_sizes (mailbox_id, items, bytes)
		SELECT f.mailbox_id, 1, NEW.size FROM folders f WHERE f.id = NEW.folder_id
	ON CONFLICT (mailbox_id) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER mailbox_sizes_delete AFTER DELETE ON folder_items BEGIN
	UPDATE mailbox_sizes SET items = items - 1, bytes = bytes - OLD.size
		WHERE mailbox_id = (SELECT mailbox_id FROM folders WHERE id = OLD.folder_id);
END;

CREATE TRIGGER mailbox_sizes_move AFTER UPDATE OF folder_id, message ON folder_items BEGIN
	UPDATE mailbox_sizes SET items = items - 1, bytes = bytes - OLD.size
		WHERE mailbox_id = (SELECT mailbox_id FROM folders WHERE id = OLD.folder_id);
	INSERT INTO mailbox_sizes (mailbox_id, items, bytes)
		SELECT f.mailbox_id, 1, NEW.size FROM folders f WHERE f.id = NEW.folder_id
	ON CONFLICT (mailbox_id) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;
