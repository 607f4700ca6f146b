-- kpe-backoffice schema, version 9: fixes to the staff sign-in
-- (docs/staff-signin.md).

-- Sessions signed in before sessions_after end at their next request
-- (set by a password change, disable, enable and a change of roles).
ALTER TABLE staff_accounts ADD COLUMN sessions_after timestamptz;

-- The OIDC subject an account is bound to: (issuer, subject) of the
-- provider's ID token, bound at the account's first OIDC sign-in or given
-- at `user add --oidc-subject` (then the issuer may be '' until the first
-- sign-in fills it). '' : not bound yet.
ALTER TABLE staff_accounts ADD COLUMN oidc_issuer  text NOT NULL DEFAULT '';
ALTER TABLE staff_accounts ADD COLUMN oidc_subject text NOT NULL DEFAULT '';

-- Failed sign-ins of names that have no account, counted per bucket of
-- the name's SHA-256 (its first two bytes: at most 65536 rows), so that
-- a failed sign-in writes one row whether the name exists or not and the
-- time of the answer does not tell which.
CREATE TABLE staff_signin_unknown (
    bucket   int         PRIMARY KEY CHECK (bucket >= 0 AND bucket < 65536),
    failures bigint      NOT NULL,
    last     timestamptz NOT NULL
);

-- The audit log's filters (AuditQuery) go by index.
CREATE INDEX staff_audit_actor  ON staff_audit (actor, id);
CREATE INDEX staff_audit_target ON staff_audit (target, id);
CREATE INDEX staff_audit_action ON staff_audit (action, id);
CREATE INDEX staff_audit_at     ON staff_audit (at);

-- TRUNCATE bypasses the row triggers of 006: refuse it too.
CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit
    FOR EACH STATEMENT EXECUTE FUNCTION staff_audit_append_only();
