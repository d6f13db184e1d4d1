-- Loans on the collateral cars and their append-only case log (store/loan_model.py).

CREATE TABLE loans (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loan_no text NOT NULL UNIQUE,
    borrower_name text NOT NULL,
    vehicle_id text NOT NULL,  -- the car; devices are bound to it by devices.vehicle_id
    principal numeric(16, 2) NOT NULL,
    currency text NOT NULL,
    start_date date NOT NULL,
    due_day smallint NOT NULL CHECK (due_day BETWEEN 1 AND 28),
    next_due_date date NOT NULL,  -- the oldest due date the payments do not cover
    paid_through date,
    grace_days integer NOT NULL CHECK (grace_days >= 0),
    state text NOT NULL CHECK (state IN ('active', 'overdue', 'restructured', 'settled',
                                         'repossessed', 'disposed', 'written_off')),
    stage text CHECK (stage IN ('reminder', 'phone', 'visit', 'outsourced', 'legal',
                                'repossession', 'storage', 'disposal', 'write_off')),
    branch text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX loans_vehicle ON loans (vehicle_id, id);
CREATE INDEX loans_state ON loans (state, id);
CREATE INDEX loans_branch ON loans (branch, id) WHERE branch IS NOT NULL;

-- Who did what to a loan, when, how and with what result; never updated nor deleted.
CREATE TABLE loan_actions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loan_id bigint NOT NULL REFERENCES loans (id),
    kind text NOT NULL CHECK (kind IN ('collection', 'payment', 'transition')),
    stage text,
    channel text,
    outcome text,
    note text,
    actor text NOT NULL,
    at timestamptz NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX loan_actions_loan ON loan_actions (loan_id, id);

CREATE FUNCTION lienwatch_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER loan_actions_append_only BEFORE UPDATE OR DELETE ON loan_actions
    FOR EACH ROW EXECUTE FUNCTION lienwatch_append_only();
