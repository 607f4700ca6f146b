-- kpe-backoffice schema, version 10: webhook delivery state shared by
-- the nodes, and https-only webhooks (docs/institutions.md).
--
-- pending is the end cursor of the event in flight ('' none): the records
-- in (delivered, pending] were posted and not acknowledged, and a retry
-- sends exactly them with the same event id. failures and next_attempt
-- are the webhook's backoff, kept here so that N nodes do not multiply
-- the attempts and a restart does not reset it. insecure_webhook allows
-- an http:// webhook_url (a lab).
ALTER TABLE institutions
    ADD COLUMN pending          text        NOT NULL DEFAULT '',
    ADD COLUMN failures         integer     NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt     timestamptz,
    ADD COLUMN insecure_webhook boolean     NOT NULL DEFAULT false;
-- the webhooks registered before this version keep working as they were
UPDATE institutions SET insecure_webhook = true WHERE webhook_url LIKE 'http:%';

-- auth_hours is the dashboard's hourly rollup of the records: by UTC hour
-- of the record's time, service, site and terminal, kept by the trigger
-- below in the ingest transaction (the dashboard no longer scans the
-- records). The terminal is in the key so that concurrent ingest
-- transactions (one terminal's batches come one at a time) do not wait
-- for each other on a shared row; the dashboard sums over terminals.
CREATE TABLE auth_hours (
    hour        timestamptz NOT NULL,
    service     text        NOT NULL,
    site_id     text        NOT NULL,
    terminal_id text        NOT NULL,
    count       bigint      NOT NULL,
    PRIMARY KEY (hour, service, site_id, terminal_id)
);

CREATE FUNCTION kpe_auth_hours() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO auth_hours (hour, service, site_id, terminal_id, count)
        SELECT date_trunc('hour', rec_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', service, site_id, terminal_id, count(*)
        FROM new_records GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (hour, service, site_id, terminal_id) DO UPDATE SET count = auth_hours.count + EXCLUDED.count;
    RETURN NULL;
END
$$;
-- the trigger first: it locks records against writes until this
-- migration commits, so the backfill below misses no record and counts
-- none twice
CREATE TRIGGER records_auth_hours AFTER INSERT ON records REFERENCING NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION kpe_auth_hours();
INSERT INTO auth_hours (hour, service, site_id, terminal_id, count)
    SELECT date_trunc('hour', rec_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', service, site_id, terminal_id, count(*)
    FROM records GROUP BY 1, 2, 3, 4;

-- an index on records (rec_time) for the dashboard was in 008 before it
-- shipped (it blocked ingest while built at start, on every partition);
-- a database that applied that draft drops it here (the semester report
-- has records_ktpel_time)
DROP INDEX IF EXISTS records_rec_time;
