-- Session presence and command replies: the same tables and meanings as PostgreSQL's
-- 0012_sessions (a split deployment needs PostgreSQL; SQLite keeps the schema the same).
CREATE TABLE gateways (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL DEFAULT '',
    started_ms INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL
);
CREATE TABLE gateway_sessions (
    terminal TEXT PRIMARY KEY,
    gateway TEXT NOT NULL,
    since_ms INTEGER NOT NULL
);
CREATE INDEX gateway_sessions_gateway ON gateway_sessions (gateway);
ALTER TABLE command_queue ADD COLUMN reply TEXT;
-- How far a detector process without a gateway has read the positions stream (`seq`, in
-- commit order), saved while it has processed everything it read.
CREATE TABLE detector_cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    saved_ms INTEGER NOT NULL
);
