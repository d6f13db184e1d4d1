-- The HTTP API's tables: API keys (hashed), fences with a set-wide version, the command log.

-- Only the SHA-256 of a key is kept; `prefix` is its first characters, for telling keys apart.
CREATE TABLE api_keys (
    name text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('admin', 'officer', 'viewer')),
    key_hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL
);

-- One GeoJSON Feature per fence (WGS-84, as the geofence package writes it back).
-- `version`: the fence-set version that wrote the row.
CREATE TABLE fences (
    id text PRIMARY KEY,
    kind text NOT NULL,
    feature text NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL
);

-- One row: bumped by every fence change, so a running engine can tell it must reload.
CREATE TABLE fence_set (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL,
    updated_at timestamptz
);
INSERT INTO fence_set (singleton, version, updated_at) VALUES (true, 0, NULL);

-- Who issued a command through the API, the request as JSON, the terminal's answer as JSON.
CREATE TABLE command_log (
    command_id bigint PRIMARY KEY REFERENCES command_queue (id),
    issued_by text NOT NULL,
    request text NOT NULL,
    reply text
);

CREATE INDEX command_queue_device ON command_queue (device_id, id);
