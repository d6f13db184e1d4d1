-- Device clocks (trajectory.clock). `fix_time` is the time the rules use: the device's own
-- time corrected for a clock known to be off (a whole-hour or GPS week-rollover offset), or the
-- receive time when the device's time is unusable (flags say which). `device_time` is the time
-- as the device sent it; NULL on rows written before this column, where it equals fix_time.
-- Adding a nullable column rewrites nothing, on plain partitions or hypertable chunks alike.
ALTER TABLE positions ADD COLUMN device_time timestamptz;
ALTER TABLE latest_positions ADD COLUMN device_time timestamptz;

-- Each device's clock as of its latest stored report: `state` a trajectory.clock.ClockState
-- code, `offset_ms` the learned correction (for an unusable clock: receive - device time),
-- `since` the receive time it has held since, `seen` the receive time of that report.
CREATE TABLE device_clocks (
    device_id integer PRIMARY KEY REFERENCES devices (id),
    state smallint NOT NULL,
    offset_ms bigint NOT NULL,
    since timestamptz NOT NULL,
    seen timestamptz NOT NULL
);
