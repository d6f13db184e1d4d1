-- Alerts: one row per incident, with its lifecycle; and the webhook outbox (written in the same
-- transaction as the alert, delivered and retried after).

CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type text NOT NULL,
    terminal text NOT NULL,
    vehicle_id text NOT NULL,
    fence_id text NOT NULL DEFAULT '',  -- '' when the alert has no fence
    time timestamptz NOT NULL,          -- data time the condition became true
    severity text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    resolved_by text,
    resolved_at timestamptz,
    note text
);
-- The incident key: adding the same alert again (a restart, a retried write) finds this row.
CREATE UNIQUE INDEX alerts_incident ON alerts (type, vehicle_id, terminal, fence_id, time);
CREATE INDEX alerts_vehicle ON alerts (vehicle_id, id);
CREATE INDEX alerts_time ON alerts (time);
CREATE INDEX alerts_unresolved ON alerts (id) WHERE state <> 'resolved';

CREATE TABLE webhook_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    url text NOT NULL,
    body bytea NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    last_error text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_outbox_alert ON webhook_outbox (alert_id);
