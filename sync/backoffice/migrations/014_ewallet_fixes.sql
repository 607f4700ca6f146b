-- kpe-backoffice schema, version 14: fixes to the e-wallet's ledger,
-- settlement and top-ups (docs/ewallet.md).
--
-- settlement_days holds the closed settlement days: the first settlement
-- of a day writes its row under an exclusive advisory lock that every
-- ingest with purse records takes shared, so once the row is there no
-- ingest books a payment into the day (a row stamped in a closed day goes
-- to the next open one) and the day's file never changes.
CREATE TABLE settlement_days (
    day       date        PRIMARY KEY,
    closed_at timestamptz NOT NULL
);

-- bad_proofs counts a purse's rows whose card proof does not verify: they
-- are kept, not counted, and take no PTC's counted slot.
ALTER TABLE purses ADD COLUMN bad_proofs bigint NOT NULL DEFAULT 0;

-- only verified payments are settled (an unchecked proof waits for
-- `kpe-backoffice purse recheck`); unchecked rows are found by their index.
DROP INDEX purse_ledger_settle;
CREATE INDEX purse_ledger_settle ON purse_ledger (settlement_date, merchant COLLATE "C", txn_time, code COLLATE "C")
    WHERE counted AND kind = 1 AND merchant <> '' AND proof = 'verified';
CREATE INDEX purse_ledger_unchecked ON purse_ledger (sam_serial, counter) WHERE proof = 'unchecked';

-- topup_settings holds the top-up limits `serve` was started with, so
-- that `kpe-backoffice topup stage` applies the same monthly limit.
CREATE TABLE topup_settings (
    id            boolean     PRIMARY KEY DEFAULT true CHECK (id),
    monthly_limit bigint      NOT NULL CHECK (monthly_limit >= 0),
    max_balance   bigint      NOT NULL CHECK (max_balance >= 0),
    updated_at    timestamptz NOT NULL
);
