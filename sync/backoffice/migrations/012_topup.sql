-- kpe-backoffice schema, version 12: e-wallet top-ups (docs/ewallet.md, part 3).
--
-- topups holds the top-ups staged per NIP (amount in rupiah, the source
-- reference: the bank transfer id, unique). A terminal's query issues an
-- authorisation for a card at its PTC (auth_*; status authorised); its
-- `topup` record marks it applied in the ingest transaction that stores
-- the record (applied_code is that record's authentication code). A
-- record of the card's transaction at auth_ptc that is not this top-up's
-- puts it back to staged. Only a staged top-up can be cancelled.
CREATE TABLE topups (
    topup_id         bytea       PRIMARY KEY CHECK (length(topup_id) = 16),
    nip              text        NOT NULL CHECK (nip ~ '^[0-9]{18}$'),
    amount           bigint      NOT NULL CHECK (amount BETWEEN 1 AND 4294967295),
    source_ref       text        NOT NULL UNIQUE CHECK (length(source_ref) BETWEEN 1 AND 64),
    staged_at        timestamptz NOT NULL,
    staged_by        text        NOT NULL DEFAULT '',
    status           text        NOT NULL CHECK (status IN ('staged', 'authorised', 'applied', 'cancelled')),
    auth_serial      bytea       CHECK (length(auth_serial) = 8),
    auth_ptc         bigint,
    auth_not_after   timestamptz,
    authorised_at    timestamptz,
    authorisations   integer     NOT NULL DEFAULT 0,
    applied_at       timestamptz,
    applied_code     text,
    applied_terminal text,
    applied_serial   bytea       CHECK (length(applied_serial) = 8),
    applied_ptc      bigint,
    applied_amount   bigint,
    CHECK ((status = 'applied') = (applied_at IS NOT NULL)),
    CHECK (status <> 'authorised' OR (auth_serial IS NOT NULL AND auth_ptc IS NOT NULL))
);
CREATE INDEX topups_nip ON topups (nip, staged_at);
CREATE INDEX topups_list ON topups (staged_at DESC, topup_id);
CREATE INDEX topups_authorised ON topups (auth_serial, auth_ptc) WHERE status = 'authorised';
