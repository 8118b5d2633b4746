-- Protocol logging (issue 16): Set-ReceiveConnector -ProtocolLoggingLevel
-- per listener, named by its Exchange-like identity ("Default Frontend",
-- "Client Frontend", "Client Proxy"). A listener without a row logs
-- nothing (Exchange's default, None).
CREATE TABLE receive_connectors (
    identity TEXT PRIMARY KEY,
    protocol_logging_level TEXT NOT NULL
);
