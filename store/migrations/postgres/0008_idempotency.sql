-- Idempotency keys of the HTTP API (store/idempotency.py): the first answer to a POST, kept
-- for its retries. `scope` is a digest of the caller's credential; `status` is NULL while
-- the first request still runs.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    body BYTEA,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);
