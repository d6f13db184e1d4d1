-- Store sequence numbers are handed out a block per write from one counter row, locked until the
-- write commits. Writes therefore get their numbers in commit order, so a reader paging with
-- `seq > cursor` never passes over rows that commit after it read (a sequence's numbers can commit
-- out of order), and one row update per write replaces one nextval() per row.
CREATE TABLE position_cursor (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_seq bigint NOT NULL
);

INSERT INTO position_cursor (next_seq)
SELECT greatest(
    coalesce((SELECT max(seq) FROM positions), 0),
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM position_seq)
) + 1;

ALTER TABLE positions ALTER COLUMN seq DROP DEFAULT;
DROP SEQUENCE position_seq;

-- Every write updates one row per reporting device here: with room left on each page the
-- updates stay on the page (HOT) and touch no index.
ALTER TABLE latest_positions SET (fillfactor = 50);
ALTER TABLE devices SET (fillfactor = 70);
