-- Loans on the collateral cars and their append-only case log (store/loan_model.py).
-- Dates are ISO 8601 text (YYYY-MM-DD), so they compare and sort as dates; money is decimal text.

CREATE TABLE loans (
    id INTEGER PRIMARY KEY,
    loan_no TEXT NOT NULL UNIQUE,
    borrower_name TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,  -- the car; devices are bound to it by devices.vehicle_id
    principal TEXT NOT NULL,
    currency TEXT NOT NULL,
    start_date TEXT NOT NULL,
    due_day INTEGER NOT NULL CHECK (due_day BETWEEN 1 AND 28),
    next_due_date TEXT NOT NULL,  -- the oldest due date the payments do not cover
    paid_through TEXT,
    grace_days INTEGER NOT NULL CHECK (grace_days >= 0),
    state TEXT NOT NULL CHECK (state IN ('active', 'overdue', 'restructured', 'settled',
                                         'repossessed', 'disposed', 'written_off')),
    stage TEXT CHECK (stage IN ('reminder', 'phone', 'visit', 'outsourced', 'legal',
                                'repossession', 'storage', 'disposal', 'write_off')),
    branch TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX loans_vehicle ON loans (vehicle_id, id);
CREATE INDEX loans_state ON loans (state, id);
CREATE INDEX loans_branch ON loans (branch, id) WHERE branch IS NOT NULL;

-- Who did what to a loan, when, how and with what result; never updated nor deleted.
CREATE TABLE loan_actions (
    id INTEGER PRIMARY KEY,
    loan_id INTEGER NOT NULL REFERENCES loans (id),
    kind TEXT NOT NULL CHECK (kind IN ('collection', 'payment', 'transition')),
    stage TEXT,
    channel TEXT,
    outcome TEXT,
    note TEXT,
    actor TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX loan_actions_loan ON loan_actions (loan_id, id);

CREATE TRIGGER loan_actions_no_update BEFORE UPDATE ON loan_actions
BEGIN
    SELECT RAISE(ABORT, 'loan_actions is append-only');
END;
CREATE TRIGGER loan_actions_no_delete BEFORE DELETE ON loan_actions
BEGIN
    SELECT RAISE(ABORT, 'loan_actions is append-only');
END;
