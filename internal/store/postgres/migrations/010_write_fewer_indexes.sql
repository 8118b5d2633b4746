-- The same two indexes as SQLite's migrations 022 and 023, for the same
-- reasons: every message filed paid for an index of folder items by
-- (folder, received time) that only the admin's folder listing used (it
-- sorts what folder_items_by_uid finds), and for an index of
-- authenticated submissions by (sender, time) whose two queries ask for
-- everything since a time; keyed by sender, each submission wrote to a
-- page of its sender's, keyed by time to the index's last page.
DROP INDEX folder_items_by_folder;
DROP INDEX messages_by_sender;
CREATE INDEX messages_auth_by_time ON messages (received_at) WHERE auth_mailbox IS NOT NULL;
