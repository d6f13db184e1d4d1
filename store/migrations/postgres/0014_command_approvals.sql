-- Dangerous commands wait for a second person (api/routes/approvals.py): the request as it
-- will be sent, who asked, for which unit, until when; who approved or rejected it, and the
-- command it became once sent.
CREATE TABLE command_approvals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    terminal text NOT NULL,
    org_id bigint NOT NULL REFERENCES orgs (id),
    msg_id integer NOT NULL,
    body bytea NOT NULL,
    request text NOT NULL,
    requested_by text NOT NULL,
    requested_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by text,
    decided_ms bigint,
    command_id bigint REFERENCES command_queue (id)
);
CREATE INDEX command_approvals_org ON command_approvals (org_id, id);
