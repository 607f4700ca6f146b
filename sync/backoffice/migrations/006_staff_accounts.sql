-- kpe-backoffice schema, version 6: staff accounts, their sign-in
-- failures and lock-out, the staff sessions (shared by every back-office
-- node on this database) and the audit log (docs/staff-signin.md).
CREATE TABLE staff_accounts (
    name          text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    roles         text[]      NOT NULL CHECK (cardinality(roles) > 0
                                  AND roles <@ ARRAY['verifier', 'institution', 'auditor', 'admin']),
    services      text[]      NOT NULL DEFAULT '{}',
    disabled      boolean     NOT NULL DEFAULT false,
    password_hash text        NOT NULL DEFAULT '',
    oidc          boolean     NOT NULL DEFAULT false,
    created       timestamptz NOT NULL,
    failures      int         NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    CHECK (password_hash <> '' OR oidc)
);

-- scs sessions: the token is the key; expired rows are deleted as new
-- sessions are written.
CREATE TABLE staff_sessions (
    token  text        PRIMARY KEY,
    data   bytea       NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expiry);

-- The audit log: only ever inserted into. The back office's role never
-- updates or deletes it (a trigger refuses both).
CREATE TABLE staff_audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    client  text        NOT NULL,
    outcome text        NOT NULL,
    detail  text        NOT NULL DEFAULT ''
);

CREATE FUNCTION staff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'staff_audit is append-only';
END $$;
CREATE TRIGGER staff_audit_append_only BEFORE UPDATE OR DELETE ON staff_audit
    FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only();
