-- kpe-backoffice schema, version 8: what the staff pages need beyond the
-- records (docs/staff-pages.md).
--
-- verification_counts counts the lookups of well-formed codes per UTC
-- hour, found or not (the dashboard's hit rate; the pages fold hours into
-- days of the report zone). terminal_uploads keeps what each terminal's
-- last upload said: its contact time, the agent version, backlog and
-- oldest queued record the batch carried (optional fields of the batch),
-- and the newest record time seen.
CREATE TABLE verification_counts (
    hour      timestamptz PRIMARY KEY,
    found     bigint NOT NULL DEFAULT 0,
    not_found bigint NOT NULL DEFAULT 0
);

CREATE TABLE terminal_uploads (
    terminal_id   text PRIMARY KEY,
    last_contact  timestamptz NOT NULL,
    agent         text NOT NULL DEFAULT '',
    backlog       bigint,
    oldest_queued timestamptz,
    last_record   timestamptz
);
