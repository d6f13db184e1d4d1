-- Candidate risk spots of a tenant, and backtests kept in the database: PostgreSQL's 0021.
ALTER TABLE spot_candidates ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1 REFERENCES orgs (id);
CREATE INDEX spot_candidates_org ON spot_candidates (org_id, id);

CREATE TABLE backtests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs (id),
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    since_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    rules TEXT,
    tolerance_ms INTEGER NOT NULL,
    requested_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    done_ms INTEGER NOT NULL DEFAULT 0,
    positions INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    report TEXT,
    runner TEXT NOT NULL,
    beat_ms INTEGER NOT NULL
);
CREATE INDEX backtests_org ON backtests (org_id, id);
