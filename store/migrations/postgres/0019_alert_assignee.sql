-- Who an alert is assigned to (an officer or collector by name), who assigned it and when.
-- NULL until assigned; an assignment never changes the alert's state. Nullable columns: no
-- rewrite of the table.
ALTER TABLE alerts ADD COLUMN assignee text;
ALTER TABLE alerts ADD COLUMN assigned_by text;
ALTER TABLE alerts ADD COLUMN assigned_at timestamptz;
