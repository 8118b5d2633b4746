-- Tenant isolation and anonymous limits (issue 11).

-- Set-TransportConfig -MaxRecipientEnvelopeLimit: 0 is Exchange Online's
-- Unlimited (the organizational limit of 1000).
ALTER TABLE organizations ADD COLUMN max_recipient_envelope_limit INTEGER NOT NULL DEFAULT 0;
