-- messages_by_sender (auth_mailbox, received_at) served two queries, both
-- "authenticated submissions since a time" (the sending counters' history
-- at start-up, the SMTP AUTH clients report), which read every entry of it
-- since no range on its first column applies. Keyed by time alone they
-- read only the entries since that time, and each new entry lands on the
-- index's last page: keyed by sender, every submission wrote to its
-- sender's own page, one more scattered page per sender and commit group.
DROP INDEX messages_by_sender;
CREATE INDEX messages_auth_by_time ON messages (received_at) WHERE auth_mailbox IS NOT NULL;
