-- On plain PostgreSQL the daily views are plain views, current at every read, and already
-- count valid fixes as PositionBatch.valid() does (0011): nothing to change.
SELECT 1;
