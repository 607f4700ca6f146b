-- kpe-backoffice schema, version 11: card data renewal (docs/renewal.md).
--
-- renewal_updates holds what imports staged: per NIP, the new contents of
-- the data groups that changed (groups: JSON object, DG number → base64
-- EF content). At most one update per NIP is staged; a later import marks
-- it superseded. A verified `renewal` record marks it applied, in the
-- ingest transaction that stores the record (applied_code is that
-- record's authentication code).
CREATE TABLE renewal_updates (
    update_id        bytea       PRIMARY KEY CHECK (length(update_id) = 16),
    nip              text        NOT NULL CHECK (nip ~ '^[0-9]{18}$'),
    groups           jsonb       NOT NULL,
    changed          smallint[]  NOT NULL,
    import_id        bytea       NOT NULL CHECK (length(import_id) = 16),
    imported_at      timestamptz NOT NULL,
    status           text        NOT NULL CHECK (status IN ('staged', 'superseded', 'applied')),
    applied_at       timestamptz,
    applied_code     text,
    applied_serial   bytea,
    applied_terminal text,
    CHECK ((status = 'applied') = (applied_at IS NOT NULL))
);
CREATE UNIQUE INDEX renewal_updates_staged ON renewal_updates (nip) WHERE status = 'staged';
CREATE INDEX renewal_updates_list ON renewal_updates (imported_at DESC, nip);
CREATE INDEX renewal_updates_nip ON renewal_updates (nip);

-- renewal_offers holds every offer answered to a terminal: the card
-- serial, the EF.SOD it was built on (base_sod) and the one it brings
-- (new_sod, SHA-256), the sequence, the expiry, and the offer's wire
-- JSON, answered again byte for byte.
CREATE TABLE renewal_offers (
    card_serial bytea       NOT NULL CHECK (length(card_serial) = 8),
    new_sod     bytea       NOT NULL CHECK (length(new_sod) = 32),
    update_id   bytea       NOT NULL REFERENCES renewal_updates (update_id),
    sequence    bigint      NOT NULL,
    base_sod    bytea       NOT NULL CHECK (length(base_sod) = 32),
    not_after   timestamptz NOT NULL,
    issued_at   timestamptz NOT NULL,
    offer       bytea       NOT NULL,
    PRIMARY KEY (card_serial, new_sod)
);
CREATE INDEX renewal_offers_state ON renewal_offers (card_serial, base_sod, update_id, sequence, issued_at DESC);
