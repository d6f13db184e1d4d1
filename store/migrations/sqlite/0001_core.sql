-- The embedded schema: same tables and meanings as PostgreSQL, times as epoch ms UTC.

CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    terminal TEXT NOT NULL UNIQUE,
    edition INTEGER,
    auth_code TEXT,
    registered_ms INTEGER,
    last_seen_ms INTEGER,
    vehicle_id TEXT
);

-- seq: the store's sequence for cursor reads; AUTOINCREMENT so it is never reused.
CREATE TABLE positions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    recv_ms INTEGER NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    speed_kmh REAL NOT NULL,
    course INTEGER NOT NULL,
    altitude_m INTEGER NOT NULL,
    alarm INTEGER NOT NULL,
    status INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    UNIQUE (device_id, time_ms)
);

CREATE TABLE latest_positions (
    device_id INTEGER PRIMARY KEY REFERENCES devices (id),
    time_ms INTEGER NOT NULL,
    recv_ms INTEGER NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    speed_kmh REAL NOT NULL,
    course INTEGER NOT NULL,
    altitude_m INTEGER NOT NULL,
    alarm INTEGER NOT NULL,
    status INTEGER NOT NULL,
    flags INTEGER NOT NULL
);

CREATE TABLE command_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id INTEGER NOT NULL REFERENCES devices (id),
    msg_id INTEGER NOT NULL CHECK (msg_id BETWEEN 0 AND 65535),
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'sent', 'acked', 'failed', 'expired')),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    serial INTEGER,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX command_queue_waiting ON command_queue (device_id, id) WHERE state = 'queued';
