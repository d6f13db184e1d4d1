-- Distance driven per device and UTC day, from consecutive valid fixes (haversine, metres).
-- A plain view in both layouts: a continuous aggregate cannot order rows, which distance needs.
-- 110 = the flags PositionBatch.valid() rejects: INVALID_FIX|IMPLAUSIBLE|DUPLICATE|FUTURE|BAD_TIME.
CREATE VIEW device_daily_distance AS
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
    WHERE flags & 110 = 0
    WINDOW w AS (PARTITION BY device_id, date_trunc('day', fix_time, 'UTC') ORDER BY fix_time)
) steps
GROUP BY device_id, day;
