-- kpe-backoffice schema, version 7: the institutions' interface
-- (docs/institutions.md).
--
-- institutions are the back-office systems of ASKES, Taspen, Bapertarum
-- ...: the record services each may see, its API keys (SHA-256 only; a
-- rotated key may keep working until expires_at), its client certificates
-- (SHA-256 of the DER), its webhook and its delivery cursor.
CREATE TABLE institutions (
    name           text PRIMARY KEY,
    services       text[]      NOT NULL CHECK (cardinality(services) > 0),
    enabled        boolean     NOT NULL DEFAULT true,
    webhook_url    text        NOT NULL DEFAULT '',
    webhook_secret bytea       NOT NULL DEFAULT '',
    delivered      text        NOT NULL DEFAULT '', -- the webhook's delivery cursor (opaque, "" = from the start)
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE institution_keys (
    hash        bytea PRIMARY KEY CHECK (length(hash) = 32),
    institution text        NOT NULL REFERENCES institutions (name),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz -- NULL: until rotated
);

CREATE TABLE institution_certs (
    fingerprint bytea PRIMARY KEY CHECK (length(fingerprint) = 32),
    institution text NOT NULL REFERENCES institutions (name)
);

-- record_feed orders the records for paging and webhooks: one row per
-- record, written by the trigger below in the inserting transaction. xid
-- is that transaction's id; a reader serves only rows whose xid is below
-- the xmin of its snapshot (every transaction below it has ended, and any
-- transaction that writes later gets a larger xid), in (xid, seq) order.
-- A sequence alone is not enough: a transaction that took seq 10 may
-- commit after one that took seq 11 was read. Not partitioned: one narrow
-- row per record.
CREATE TABLE record_feed (
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq        bigserial,
    service    text        NOT NULL,
    sam_serial bytea       NOT NULL,
    counter    bigint      NOT NULL,
    PRIMARY KEY (xid, seq)
);
CREATE INDEX record_feed_service ON record_feed (service, xid, seq);

-- a statement trigger with a transition table on the partitioned parent:
-- it sees the rows of every partition, and partitions made later
-- (kpe_record_partition) need nothing of their own
CREATE FUNCTION kpe_record_feed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_feed (service, sam_serial, counter)
        SELECT service, sam_serial, counter FROM new_records ORDER BY received_at, sam_serial, counter;
    RETURN NULL;
END
$$;
CREATE TRIGGER records_feed AFTER INSERT ON records REFERENCING NEW TABLE AS new_records
    FOR EACH STATEMENT EXECUTE FUNCTION kpe_record_feed();

-- the records stored before this migration, in the order they came
INSERT INTO record_feed (service, sam_serial, counter)
    SELECT service, sam_serial, counter FROM records ORDER BY received_at, sam_serial, counter;
