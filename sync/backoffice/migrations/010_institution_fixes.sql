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
