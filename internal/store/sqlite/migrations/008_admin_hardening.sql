-- Admin surface hardening (issue 11): an API key may expire
-- (New-ApiKey -ExpiresAfter). 0: never.
ALTER TABLE api_keys ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;
