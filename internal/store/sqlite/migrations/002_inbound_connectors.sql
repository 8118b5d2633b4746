-- Direct Send control and inbound connectors (issue 3).

ALTER TABLE organizations ADD COLUMN reject_direct_send INTEGER NOT NULL DEFAULT 0;

CREATE TABLE inbound_connectors (
	id             INTEGER PRIMARY KEY,
	org_id         INTEGER NOT NULL REFERENCES organizations(id),
	name           TEXT NOT NULL COLLATE NOCASE,
	connector_type TEXT NOT NULL,
	sender_domains TEXT NOT NULL,             -- JSON array
	sender_ip_addresses TEXT NOT NULL,        -- JSON array of CIDR prefixes
	tls_sender_certificate_name TEXT NOT NULL,
	tls_sender_certificate_fingerprints TEXT NOT NULL, -- JSON array
	require_tls    INTEGER NOT NULL,
	restrict_domains_to_ip_addresses INTEGER NOT NULL,
	restrict_domains_to_certificate  INTEGER NOT NULL,
	enabled        INTEGER NOT NULL,
	comment        TEXT NOT NULL,
	when_created   INTEGER NOT NULL,
	UNIQUE (org_id, name)
);

-- The connector that admitted a message, for the header and message trace.
ALTER TABLE messages ADD COLUMN inbound_connector TEXT NOT NULL DEFAULT '';
