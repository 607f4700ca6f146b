-- kpe-backoffice schema, version 13: the purse ledger of the e-wallet
-- (docs/ewallet.md, part 4).
--
-- purses holds each purse's running state (the shadow balance's terms,
-- the PTCs seen, the missing ones as JSON ranges); its row is locked by
-- the ingest transaction that adds a ledger row of the card, so two
-- batches naming one card apply in turn.
CREATE TABLE purses (
    card_serial   bytea  PRIMARY KEY CHECK (length(card_serial) = 8),
    first_ptc     bigint NOT NULL DEFAULT 0,
    last_ptc      bigint NOT NULL DEFAULT 0,
    first_balance bigint NOT NULL DEFAULT 0,
    first_delta   bigint NOT NULL DEFAULT 0,
    sum_delta     bigint NOT NULL DEFAULT 0,
    last_balance  bigint NOT NULL DEFAULT 0,
    rows          bigint NOT NULL DEFAULT 0,
    repeats       bigint NOT NULL DEFAULT 0,
    gaps          jsonb  NOT NULL DEFAULT '[]'
);

-- purse_ledger holds one row per accepted purse record (a payment is a
-- debit, a top-up a credit), keyed by the record (SAM serial, counter),
-- so a record is in it once. counted: the first row of its card serial
-- and PTC (a repeat is kept, not counted). settlement_date: the WIB day
-- the record was accepted; the settlement reads the counted debits with
-- a merchant and a proof that is not bad through purse_ledger_settle.
CREATE TABLE purse_ledger (
    sam_serial      bytea       NOT NULL CHECK (length(sam_serial) = 8),
    counter         bigint      NOT NULL,
    card_serial     bytea       NOT NULL CHECK (length(card_serial) = 8),
    ptc             bigint      NOT NULL,
    kind            smallint    NOT NULL CHECK (kind IN (1, 2)),
    amount          bigint      NOT NULL CHECK (amount > 0),
    balance_after   bigint      NOT NULL,
    sam_txn         bigint      NOT NULL,
    record_id       bytea       NOT NULL CHECK (length(record_id) = 16),
    code            text        NOT NULL,
    terminal_id     text        NOT NULL,
    merchant        text        NOT NULL,
    reference       text        NOT NULL,
    txn_time        timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    settlement_date date        NOT NULL,
    proof           text        NOT NULL CHECK (proof IN ('verified', 'bad', 'unchecked')),
    counted         boolean     NOT NULL,
    PRIMARY KEY (sam_serial, counter)
);
CREATE INDEX purse_ledger_card ON purse_ledger (card_serial, ptc);
CREATE UNIQUE INDEX purse_ledger_counted ON purse_ledger (card_serial, ptc) WHERE counted;
CREATE INDEX purse_ledger_settle ON purse_ledger (settlement_date, merchant COLLATE "C", txn_time, code COLLATE "C")
    WHERE counted AND kind = 1 AND merchant <> '' AND proof <> 'bad';
