-- Legacy TLS for old devices (issue 15, seed 002):
-- Set-TransportConfig -AllowLegacyTLSClients $true lets the organization's
-- mailboxes use SMTP AUTH over TLS 1.0/1.1 on the dedicated legacy listener
-- (--submission-legacy). Off by default, as in Exchange Online.
ALTER TABLE organizations ADD COLUMN allow_legacy_tls_clients INTEGER NOT NULL DEFAULT 0;
