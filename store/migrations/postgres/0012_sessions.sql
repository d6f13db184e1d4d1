-- Split deployments: which gateway process holds each terminal's session, the gateways'
-- heartbeats (a session of a gateway not seen lately is not held), the terminal's answer
-- to a queued command (JSON, as the command log keeps it), and a detector's cursor. Times are epoch ms as the
-- gateways' clocks give them, so the SQL is the same on both databases (store.presence).
CREATE TABLE gateways (
    id text PRIMARY KEY,
    address text NOT NULL DEFAULT '',
    started_ms bigint NOT NULL,
    seen_ms bigint NOT NULL
);
CREATE TABLE gateway_sessions (
    terminal text PRIMARY KEY,
    gateway text NOT NULL,
    since_ms bigint NOT NULL
);
CREATE INDEX gateway_sessions_gateway ON gateway_sessions (gateway);
ALTER TABLE command_queue ADD COLUMN reply text;
-- How far a detector process without a gateway has read the positions stream (`seq`, in
-- commit order), saved while it has processed everything it read.
CREATE TABLE detector_cursors (
    name text PRIMARY KEY,
    seq bigint NOT NULL,
    saved_ms bigint NOT NULL
);
