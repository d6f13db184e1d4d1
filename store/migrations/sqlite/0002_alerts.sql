-- Alerts with their lifecycle, and the webhook outbox: PostgreSQL's 0005, times as epoch ms UTC.

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    terminal TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    fence_id TEXT NOT NULL DEFAULT '',
    time_ms INTEGER NOT NULL,
    severity TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    resolved_by TEXT,
    resolved_ms INTEGER,
    note TEXT
);
CREATE UNIQUE INDEX alerts_incident ON alerts (type, vehicle_id, terminal, fence_id, time_ms);
CREATE INDEX alerts_vehicle ON alerts (vehicle_id, id);
CREATE INDEX alerts_time ON alerts (time_ms);

CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_ms, id) WHERE state = 'pending';
CREATE INDEX webhook_outbox_alert ON webhook_outbox (alert_id);
