-- Candidate risk spots of a tenant, and backtests kept in the database.
-- A candidate belongs to one unit: the tenant whose subtree holds every car of its evidence,
-- else the platform (rows from before: the platform's, as they were).
ALTER TABLE spot_candidates ADD COLUMN org_id bigint NOT NULL DEFAULT 1 REFERENCES orgs (id);
CREATE INDEX spot_candidates_org ON spot_candidates (org_id, id);

-- Backtest jobs the API runs: one unit's (the requester's) subtree each. `runner` is the API
-- process that holds the job, `beat_ms` when it last said so: an unfinished job whose runner
-- stopped beating was interrupted (a restart) and reads as failed.
CREATE TABLE backtests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES orgs (id),
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    since_ms bigint NOT NULL,
    until_ms bigint NOT NULL,
    rules text,
    tolerance_ms bigint NOT NULL,
    requested_by text NOT NULL,
    created_ms bigint NOT NULL,
    started_ms bigint,
    finished_ms bigint,
    done_ms bigint NOT NULL DEFAULT 0,     -- data time covered
    positions bigint NOT NULL DEFAULT 0,
    error text,
    report text,                           -- JSON, when done
    runner text NOT NULL,
    beat_ms bigint NOT NULL
);
CREATE INDEX backtests_org ON backtests (org_id, id);
CREATE INDEX backtests_unfinished ON backtests (runner) WHERE state IN ('queued', 'running');
