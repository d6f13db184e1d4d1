-- Positions in native daily partitions (UTC days), for servers without TimescaleDB.
-- The store creates each day's partition before writing into it; fixes with absurd times land
-- in positions_outside and move into their day's partition if that day is ever created.

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
) PARTITION BY RANGE (fix_time);

CREATE TABLE positions_outside PARTITION OF positions DEFAULT;

-- Rows arrive roughly in time and sequence order: BRIN indexes cost little on the write path.
CREATE INDEX positions_fix_time_brin ON positions USING brin (fix_time) WITH (autosummarize = on);
CREATE INDEX positions_seq_brin ON positions USING brin (seq) WITH (autosummarize = on);

CREATE FUNCTION lienwatch_ensure_day_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('positions_p%s', to_char(day, 'YYYYMMDD'));
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('lienwatch_positions_partitions'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE positions INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM positions_outside WHERE fix_time >= %L AND fix_time < %L '
        'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    EXECUTE format('ALTER TABLE positions ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN true;
END $$;

-- Retention for the plain layout: drops whole days before `cutoff`; returns how many.
CREATE FUNCTION lienwatch_drop_day_partitions_before(cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped integer := 0;
BEGIN
    FOR r IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'positions'::regclass AND c.relname ~ '^positions_p[0-9]{8}$'
          AND to_date(substr(c.relname, 12), 'YYYYMMDD') < cutoff
    LOOP
        EXECUTE format('DROP TABLE %I', r.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

-- Same columns as the continuous aggregate of the TimescaleDB layout.
-- 110 = the flags PositionBatch.valid() rejects: INVALID_FIX|IMPLAUSIBLE|DUPLICATE|FUTURE|BAD_TIME.
CREATE VIEW device_daily_activity AS
SELECT device_id,
       date_trunc('day', fix_time, 'UTC') AS day,
       count(*) AS reports,
       sum(CASE WHEN flags & 110 = 0 THEN 1 ELSE 0 END) AS valid_reports,
       max(speed_kmh) AS max_speed_kmh,
       min(fix_time) AS first_fix,
       max(fix_time) AS last_fix
FROM positions
GROUP BY device_id, date_trunc('day', fix_time, 'UTC');
