-- The continuous aggregate of daily activity, made current and correct on TimescaleDB:
-- - real-time (materialized_only = false): a read adds the rows not materialized yet to what
--   the refresh policy has materialized, so today's reports show at once, as on the plain
--   layout (created WITH NO DATA and materialized only, it answered nothing until the policy's
--   first refresh, and never the last hour);
-- - valid reports counted as PositionBatch.valid() does (flags & 1646 = 0: no implausible,
--   backfilled-bad, clock reset, stuck or future rows; 0011 could not redefine an aggregate).
-- And retention follows LIENWATCH_RETENTION_DAYS alone (unset: kept), as on the other layouts:
-- the fixed 400-day policy of 0002 dropped chunks a deployment had asked to keep.
SELECT remove_retention_policy('positions', if_exists => true);

SELECT remove_continuous_aggregate_policy('device_daily_activity', if_exists => true);
DROP MATERIALIZED VIEW device_daily_activity;

CREATE MATERIALIZED VIEW device_daily_activity
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 day', fix_time) AS day,
       count(*) AS reports,
       sum(CASE WHEN flags & 1646 = 0 THEN 1 ELSE 0 END) AS valid_reports,
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
