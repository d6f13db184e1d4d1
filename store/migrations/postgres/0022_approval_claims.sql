-- An approval is sent before it is marked approved: while one admin's approval sends the
-- command, the request is claimed (`claimed_by` until `claim_until_ms`) so no one else approves,
-- rejects or expires it meanwhile; a send that fails leaves it pending with the reason in
-- `last_error`. A claim whose process died lapses at `claim_until_ms`. Nullable columns: no
-- rewrite of the table.
ALTER TABLE command_approvals ADD COLUMN claimed_by text;
ALTER TABLE command_approvals ADD COLUMN claim_until_ms bigint;
ALTER TABLE command_approvals ADD COLUMN last_error text;
