-- Candidate risk spots `gathering` proposes (one per gathering alert), for an admin to accept
-- into the spot library (a hotspot fence) or dismiss. Times in epoch ms, as the alert details.

CREATE TABLE spot_candidates (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint UNIQUE REFERENCES alerts (id),
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    radius_m double precision NOT NULL,
    borrowers integer NOT NULL,
    evidence jsonb NOT NULL,           -- the visits: which cars, when
    proposed_ms bigint NOT NULL,       -- data time of the proposal (the alert's time)
    created_ms bigint NOT NULL,
    status text NOT NULL DEFAULT 'proposed'
        CHECK (status IN ('proposed', 'accepted', 'dismissed')),
    fence_id text,                     -- the hotspot an accepted candidate became
    decided_ms bigint,
    decided_by text,
    note text
);
CREATE INDEX spot_candidates_status ON spot_candidates (status, id);
