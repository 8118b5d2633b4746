-- Protocol logging per inbound connector (issue 16):
-- Set-InboundConnector -ProtocolLoggingLevel Verbose|None, an
-- organization's own setting. A connector logs nothing by default
-- (Exchange's default for receive connectors, None).
ALTER TABLE inbound_connectors ADD COLUMN protocol_logging_level TEXT NOT NULL DEFAULT 'None';
