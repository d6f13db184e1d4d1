-- The daily views read "valid" as PositionBatch.valid() does since device clocks (0010):
-- 1646 = INVALID_FIX|IMPLAUSIBLE|DUPLICATE|FUTURE|BAD_TIME|CLOCK_RESET|CLOCK_STUCK (was 110):
-- a row whose device clock was reset or stuck has no usable time or place for a day's figures.

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

CREATE OR REPLACE VIEW device_daily_activity AS
SELECT device_id,
       date_trunc('day', fix_time, 'UTC') AS day,
       count(*) AS reports,
       sum(CASE WHEN flags & 1646 = 0 THEN 1 ELSE 0 END) AS valid_reports,
       max(speed_kmh) AS max_speed_kmh,
       min(fix_time) AS first_fix,
       max(fix_time) AS last_fix
FROM positions
GROUP BY device_id, date_trunc('day', fix_time, 'UTC');
