-- Device clocks: the same columns and meanings as PostgreSQL's 0010_device_clock, times as
-- epoch ms. device_time_ms is NULL on rows written before it, where it equals time_ms.
ALTER TABLE positions ADD COLUMN device_time_ms INTEGER;
ALTER TABLE latest_positions ADD COLUMN device_time_ms INTEGER;

CREATE TABLE device_clocks (
    device_id INTEGER PRIMARY KEY REFERENCES devices (id),
    state INTEGER NOT NULL,
    offset_ms INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL
);
