-- IMAP4 and POP3 governance and mailbox quotas (issue 13).

-- Set-CASMailbox -ImapEnabled -PopEnabled; existing mailboxes keep the
-- access Exchange's default plans give ($true).
ALTER TABLE mailboxes ADD COLUMN imap_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE mailboxes ADD COLUMN pop_enabled INTEGER NOT NULL DEFAULT 1;

-- Set-Mailbox quotas in bytes, 0 for Unlimited; Exchange Online's
-- defaults: 98 GB, 99 GB, 100 GB.
ALTER TABLE mailboxes ADD COLUMN issue_warning_quota INTEGER NOT NULL DEFAULT 105226698752;
ALTER TABLE mailboxes ADD COLUMN prohibit_send_quota INTEGER NOT NULL DEFAULT 106300440576;
ALTER TABLE mailboxes ADD COLUMN prohibit_send_receive_quota INTEGER NOT NULL DEFAULT 107374182400;

-- The organization's CAS mailbox plan (Set-CASMailboxPlan).
ALTER TABLE organizations ADD COLUMN cas_plan_imap_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE organizations ADD COLUMN cas_plan_pop_enabled INTEGER NOT NULL DEFAULT 1;

-- New-/Set-AuthenticationPolicy -AllowBasicAuthImap -AllowBasicAuthPop: a
-- policy without them blocks Basic authentication for the protocol.
ALTER TABLE authentication_policies ADD COLUMN allow_basic_auth_imap INTEGER NOT NULL DEFAULT 0;
ALTER TABLE authentication_policies ADD COLUMN allow_basic_auth_pop INTEGER NOT NULL DEFAULT 0;

-- Mailbox sizes, kept by triggers on folder_items whoever writes them
-- (delivery, IMAP APPEND, EXPUNGE, MOVE), so the SMTP path reads a size
-- rather than summing a mailbox's items at every RCPT.
CREATE TABLE mailbox_sizes (
	mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	items      INTEGER NOT NULL,
	bytes      INTEGER NOT NULL
);
INSERT INTO mailbox_sizes (mailbox_id, items, bytes)
	SELECT f.mailbox_id, COUNT(i.id), COALESCE(SUM(m.size), 0)
	FROM folders f JOIN folder_items i ON i.folder_id = f.id JOIN messages m ON m.id = i.message
	GROUP BY f.mailbox_id;

CREATE TRIGGER mailbox_sizes_insert AFTER INSERT ON folder_items BEGIN
	INSERT INTO mailbox_sizes (mailbox_id, items, bytes)
		SELECT f.mailbox_id, 1, COALESCE((SELECT size FROM messages WHERE id = NEW.message), 0)
		FROM folders f WHERE f.id = NEW.folder_id
	ON CONFLICT (mailbox_id) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER mailbox_sizes_delete AFTER DELETE ON folder_items BEGIN
	UPDATE mailbox_sizes SET items = items - 1, bytes = bytes - COALESCE((SELECT size FROM messages WHERE id = OLD.message), 0)
		WHERE mailbox_id = (SELECT mailbox_id FROM folders WHERE id = OLD.folder_id);
END;

CREATE TRIGGER mailbox_sizes_move AFTER UPDATE OF folder_id, message ON folder_items BEGIN
	UPDATE mailbox_sizes SET items = items - 1, bytes = bytes - COALESCE((SELECT size FROM messages WHERE id = OLD.message), 0)
		WHERE mailbox_id = (SELECT mailbox_id FROM folders WHERE id = OLD.folder_id);
	INSERT INTO mailbox_sizes (mailbox_id, items, bytes)
		SELECT f.mailbox_id, 1, COALESCE((SELECT size FROM messages WHERE id = NEW.message), 0)
		FROM folders f WHERE f.id = NEW.folder_id
	ON CONFLICT (mailbox_id) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
END;

-- The sign-in report (Get-MailboxSignInReport): successful sign-ins per UTC
-- day, protocol, mailbox opened, who signed in, client address and method.
CREATE TABLE mailbox_sign_ins (
	org_id     INTEGER NOT NULL,
	day        INTEGER NOT NULL, -- days since 1970-01-01 UTC
	protocol   TEXT NOT NULL,
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	actor      TEXT NOT NULL,
	client_ip  TEXT NOT NULL,
	method     TEXT NOT NULL,
	count      INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	PRIMARY KEY (day, protocol, mailbox_id, actor, client_ip, method)
) WITHOUT ROWID;
CREATE INDEX mailbox_sign_ins_by_org ON mailbox_sign_ins (org_id, day);
CREATE INDEX mailbox_sign_ins_by_mailbox ON mailbox_sign_ins (mailbox_id);
