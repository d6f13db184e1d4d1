-- Organization units: PostgreSQL's 0013 (see there).

CREATE TABLE orgs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('platform', 'tenant', 'branch', 'dealer')),
    parent INTEGER REFERENCES orgs (id),
    path TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    CHECK ((kind = 'platform') = (parent IS NULL))
);
INSERT INTO orgs (id, name, kind, parent, path, created_ms) VALUES (1, 'platform', 'platform', NULL, '/1/', 0);

CREATE TABLE vehicles (
    vehicle_id TEXT PRIMARY KEY,
    org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id)
);
INSERT OR IGNORE INTO vehicles (vehicle_id)
    SELECT vehicle_id FROM devices WHERE vehicle_id IS NOT NULL
    UNION SELECT vehicle_id FROM loans;

ALTER TABLE api_keys ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
ALTER TABLE devices ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
ALTER TABLE loans ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
ALTER TABLE fences ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
ALTER TABLE alerts ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
ALTER TABLE command_log ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
CREATE INDEX devices_org ON devices (org_id, terminal);
CREATE INDEX loans_org ON loans (org_id, id);
CREATE INDEX fences_org ON fences (org_id, id);
CREATE INDEX alerts_org ON alerts (org_id, id);
CREATE INDEX vehicles_org ON vehicles (org_id);

-- An alert belongs to its vehicle's unit, else its device's.
CREATE TRIGGER alerts_org AFTER INSERT ON alerts
BEGIN
    UPDATE alerts SET org_id = coalesce(
        (SELECT org_id FROM vehicles WHERE vehicle_id = NEW.vehicle_id),
        (SELECT org_id FROM devices WHERE terminal = NEW.terminal),
        1) WHERE id = NEW.id;
END;

-- Webhook receivers of a unit: each gets the alerts of that unit and the units under it, in the
-- outbox beside the platform-wide LIENWATCH_WEBHOOK_URLS. A delivery to one is signed with its
-- own secret (kept on the outbox row; NULL there: the platform's LIENWATCH_WEBHOOK_SECRET).
CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs (id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,  -- the HMAC key its deliveries are signed with
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (org_id, url)
);
ALTER TABLE webhook_outbox ADD COLUMN secret TEXT;

-- Cars and borrowers as records: PostgreSQL's 0013 (see there).
ALTER TABLE vehicles ADD COLUMN vin TEXT;
ALTER TABLE vehicles ADD COLUMN plate TEXT;
ALTER TABLE vehicles ADD COLUMN make TEXT;
ALTER TABLE vehicles ADD COLUMN model TEXT;
ALTER TABLE vehicles ADD COLUMN colour TEXT;
ALTER TABLE vehicles ADD COLUMN dealer_id INTEGER REFERENCES orgs (id);
CREATE TABLE borrowers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    id_number TEXT,
    phone TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX borrowers_org ON borrowers (org_id, id);
ALTER TABLE loans ADD COLUMN borrower_id INTEGER REFERENCES borrowers (id);

-- A unit's threshold overrides: PostgreSQL's 0013 (see there).
CREATE TABLE unit_rules (
    org_id INTEGER PRIMARY KEY REFERENCES orgs (id),
    rules TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
