-- The HTTP API's tables: API keys (hashed), fences with a set-wide version, the command log.

-- Only the SHA-256 of a key is kept; `prefix` is its first characters, for telling keys apart.
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'officer', 'viewer')),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- One GeoJSON Feature per fence (WGS-84, as the geofence package writes it back).
-- `version`: the fence-set version that wrote the row.
CREATE TABLE fences (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    feature TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    version INTEGER NOT NULL
);

-- One row: bumped by every fence change, so a running engine can tell it must reload.
CREATE TABLE fence_set (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version INTEGER NOT NULL,
    updated_ms INTEGER
);
INSERT INTO fence_set (singleton, version, updated_ms) VALUES (1, 0, NULL);

-- Who issued a command through the API, the request as JSON, the terminal's answer as JSON.
CREATE TABLE command_log (
    command_id INTEGER PRIMARY KEY REFERENCES command_queue (id),
    issued_by TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT
);

CREATE INDEX devices_vehicle ON devices (vehicle_id) WHERE vehicle_id IS NOT NULL;
CREATE INDEX command_queue_device ON command_queue (device_id, id);
