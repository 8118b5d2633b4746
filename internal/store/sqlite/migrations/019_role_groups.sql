-- Role group membership (Add-RoleGroupMember): which mailboxes of an
-- organization hold an admin role group and so may sign in to the web
-- admin center. A membership goes with its mailbox (ON DELETE CASCADE),
-- as removing a user in Exchange removes it from its role groups.
CREATE TABLE role_group_members (
	org_id     INTEGER NOT NULL REFERENCES organizations(id),
	role       TEXT NOT NULL,       -- "Organization Management", ...
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	PRIMARY KEY (org_id, role, mailbox_id)
);
CREATE INDEX role_group_members_mailbox ON role_group_members(mailbox_id);
