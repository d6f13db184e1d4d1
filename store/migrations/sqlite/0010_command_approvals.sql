-- Dangerous commands waiting for a second person: PostgreSQL's 0014 (see there).
CREATE TABLE command_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal TEXT NOT NULL,
    org_id INTEGER NOT NULL REFERENCES orgs (id),
    msg_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    request TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by TEXT,
    decided_ms INTEGER,
    command_id INTEGER REFERENCES command_queue (id)
);
CREATE INDEX command_approvals_org ON command_approvals (org_id, id);
