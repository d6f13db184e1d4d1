-- Every change made through the API: who, in which unit, what, when, before and after (JSON
-- text, null for a creation or a deletion). Written in the transaction of the change; never
-- updated nor deleted.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms bigint NOT NULL,
    actor text NOT NULL,
    actor_org bigint NOT NULL REFERENCES orgs (id),
    org_id bigint NOT NULL REFERENCES orgs (id),
    action text NOT NULL,
    target text NOT NULL,
    before text,
    after text
);
CREATE INDEX audit_log_org ON audit_log (org_id, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION lienwatch_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION lienwatch_append_only();
