-- The daily views read "valid" as PositionBatch.valid() does since device clocks (0010):
-- 1646 = INVALID_FIX|IMPLAUSIBLE|DUPLICATE|FUTURE|BAD_TIME|CLOCK_RESET|CLOCK_STUCK (was 110):
-- a row whose device clock was reset or stuck has no usable time or place for a day's figures.
-- On TimescaleDB, device_daily_activity is a continuous aggregate: its definition stays as it
-- is (re-creating it would re-materialize every day); only the distance view changes.

CREATE OR REPLACE VIEW device_daily_distance AS
SELECT device_id, day,
       coalesce(sum(2 * 6371008.8 * asin(least(1, sqrt(
           power(sin(radians(lat - prev_lat) / 2), 2)
           + cos(radians(lat)) * cos(radians(prev_lat))
             * power(sin(radians(lon - prev_lon) / 2), 2)))))
           FILTER (WHERE prev_lat IS NOT NULL), 0) AS distance_m,
       count(*) AS fixes
FROM (
    SELECT device_id, lon, lat,
           date_trunc('day', fix_time, 'UTC') AS day,
           lag(lon) OVER w AS prev_lon,
           lag(lat) OVER w AS prev_lat
    FROM positions
    WHERE flags & 1646 = 0
    WINDOW w AS (PARTITION BY device_id, date_trunc('day', fix_time, 'UTC') ORDER BY fix_time)
) steps
GROUP BY device_id, day;
