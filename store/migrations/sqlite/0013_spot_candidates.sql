-- Candidate risk spots `gathering` proposes (one per gathering alert), for an admin to accept
-- into the spot library (a hotspot fence) or dismiss.

CREATE TABLE spot_candidates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER UNIQUE REFERENCES alerts (id),
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    radius_m REAL NOT NULL,
    borrowers INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    proposed_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'proposed'
        CHECK (status IN ('proposed', 'accepted', 'dismissed')),
    fence_id TEXT,
    decided_ms INTEGER,
    decided_by TEXT,
    note TEXT
);
CREATE INDEX spot_candidates_status ON spot_candidates (status, id);
