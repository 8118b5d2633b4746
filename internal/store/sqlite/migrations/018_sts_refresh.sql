-- Set-User -STSRefreshTokensValidFrom (issue 15): OAuth tokens issued
-- before this time (Unix nanoseconds, 0 for none) no longer sign in to the
-- mailbox.
ALTER TABLE mailboxes ADD COLUMN sts_refresh_tokens_valid_from INTEGER NOT NULL DEFAULT 0;
