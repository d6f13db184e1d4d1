-- Approval claims and the last failed send's reason: PostgreSQL's 0022.
ALTER TABLE command_approvals ADD COLUMN claimed_by TEXT;
ALTER TABLE command_approvals ADD COLUMN claim_until_ms INTEGER;
ALTER TABLE command_approvals ADD COLUMN last_error TEXT;
