-- PostgreSQL's 0020 (detectors side by side); a SQLite deployment runs one process, whose
-- detector owns every partition, so these tables stay empty there.
CREATE TABLE detector_partitions (
    partitions INTEGER NOT NULL,
    part INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    state BLOB,
    owner TEXT NOT NULL,
    saved_ms INTEGER NOT NULL,
    PRIMARY KEY (partitions, part)
);

CREATE TABLE detector_members (
    member TEXT PRIMARY KEY,
    place TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    owned INTEGER NOT NULL
);
