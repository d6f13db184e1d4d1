-- Who an alert is assigned to, who assigned it and when: PostgreSQL's 0019.
ALTER TABLE alerts ADD COLUMN assignee TEXT;
ALTER TABLE alerts ADD COLUMN assigned_by TEXT;
ALTER TABLE alerts ADD COLUMN assigned_ms INTEGER;
