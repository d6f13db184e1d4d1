-- Positions as a TimescaleDB hypertable: daily chunks, compression after 7 days, retention
-- 400 days, and a continuous aggregate of daily activity per device.
-- Chosen by `lienwatch migrate` when the extension can be created; never run on this project's
-- CI machine (TimescaleDB is not in Debian's archive): keep it in step with the plain layout.

CREATE SEQUENCE position_seq AS bigint;

CREATE TABLE positions (
    seq bigint NOT NULL DEFAULT nextval('position_seq'),
    device_id integer NOT NULL,
    fix_time timestamptz NOT NULL,
    recv_time timestamptz NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    speed_kmh real NOT NULL,
    course smallint NOT NULL,
    altitude_m integer NOT NULL,
    alarm bigint NOT NULL,
    status bigint NOT NULL,
    flags integer NOT NULL,
    PRIMARY KEY (device_id, fix_time)
);

SELECT create_hypertable('positions', 'fix_time', chunk_time_interval => INTERVAL '1 day');

CREATE INDEX positions_seq_brin ON positions USING brin (seq) WITH (autosummarize = on);

-- Late fixes into compressed chunks need TimescaleDB >= 2.11 (DML on compressed chunks).
ALTER TABLE positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'fix_time DESC'
);
SELECT add_compression_policy('positions', INTERVAL '7 days');
SELECT add_retention_policy('positions', INTERVAL '400 days');

-- 110 = the flags PositionBatch.valid() rejects: INVALID_FIX|IMPLAUSIBLE|DUPLICATE|FUTURE|BAD_TIME.
CREATE MATERIALIZED VIEW device_daily_activity WITH (timescaledb.continuous) AS
SELECT device_id,
       time_bucket(INTERVAL '1 day', fix_time) AS day,
       count(*) AS reports,
       sum(CASE WHEN flags & 110 = 0 THEN 1 ELSE 0 END) AS valid_reports,
       max(speed_kmh) AS max_speed_kmh,
       min(fix_time) AS first_fix,
       max(fix_time) AS last_fix
FROM positions
GROUP BY device_id, time_bucket(INTERVAL '1 day', fix_time)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('device_daily_activity',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
