-- Detectors side by side (docs/deploy.md): each partition of the vehicles has one checkpoint,
-- the engine state of its owner and the positions cursor (positions.seq) that state reflects;
-- `owner` is the detector that holds the partition's advisory lock now (a checkpoint written
-- by any other is refused). Keyed by the partition count too: another count starts afresh.
CREATE TABLE detector_partitions (
    partitions integer NOT NULL,
    part integer NOT NULL,
    seq bigint NOT NULL,
    state bytea,
    owner text NOT NULL,
    saved_ms bigint NOT NULL,
    PRIMARY KEY (partitions, part)
);

-- Each running detector's heartbeat (every second): how long ago a dead owner was last heard
-- when its partitions are taken over, and which detector owns how many.
CREATE TABLE detector_members (
    member text PRIMARY KEY,
    place text NOT NULL,
    seen_ms bigint NOT NULL,
    owned integer NOT NULL
);
