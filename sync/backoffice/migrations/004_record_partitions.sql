-- kpe-backoffice schema, version 4: the record table partitioned by month
-- (docs/backoffice.md, "Storage").
--
-- records is partitioned by RANGE on received_at, the back office's own
-- clock, one partition per UTC month (records_yYYYYmMM) and a DEFAULT
-- partition (records_default) for anything no monthly partition covers.
-- received_at, not rec_time: every insert lands in the current month's
-- partition, created ahead of time, whatever the terminal's clock says and
-- however late an offline terminal uploads; old months are not written
-- again (except the chain-break flag a late predecessor clears).
--
-- A unique constraint on a partitioned table must contain the partition
-- key, so the uniqueness of a record (its SAM serial and counter, its hash,
-- its code) lives in record_keys, one non-partitioned row per record that
-- also names the record's received_at (its partition). record_aliases
-- refers to record_keys.

ALTER TABLE records RENAME TO records_v3;
ALTER TABLE record_aliases DROP CONSTRAINT record_aliases_sam_serial_counter_fkey;

CREATE TABLE record_keys (
    sam_serial  bytea       NOT NULL REFERENCES sams (serial),
    counter     bigint      NOT NULL CHECK (counter > 0),
    hash        bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    code        text        NOT NULL UNIQUE,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (sam_serial, counter)
);

CREATE TABLE records (
    sam_serial  bytea       NOT NULL,
    counter     bigint      NOT NULL CHECK (counter > 0),
    hash        bytea       NOT NULL CHECK (length(hash) = 32),
    code        text        NOT NULL,
    record_id   bytea       NOT NULL,
    terminal_id text        NOT NULL,
    site_id     text        NOT NULL,
    service     text        NOT NULL,
    card_type   smallint    NOT NULL,
    subject     text        NOT NULL,
    fingerprint smallint    NOT NULL,
    rec_time    timestamptz NOT NULL,
    prev_hash   bytea       NOT NULL,
    flags       text[]      NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL,
    encoded     bytea       NOT NULL
) PARTITION BY RANGE (received_at);
CREATE TABLE records_default PARTITION OF records DEFAULT;

-- kpe_record_partition makes the partition of the UTC month holding at,
-- unless it exists, moving the rows of that month the DEFAULT partition
-- caught into it. It returns whether it made one. Callers serialise on the
-- migration advisory lock (taken here for the transaction; a session
-- holding it already, as the migration does, passes).
CREATE FUNCTION kpe_record_partition(at timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text        := 'records_' || to_char(at AT TIME ZONE 'UTC', '"y"YYYY"m"MM');
BEGIN
    PERFORM pg_advisory_xact_lock(4935749); -- 0x4b5045, the migration lock
    -- a query, not to_regclass: it sees a partition another session made
    -- while this one waited for the lock
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = name AND n.nspname = current_schema()) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('WITH moved AS (DELETE FROM records_default WHERE received_at >= %L AND received_at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, name);
    EXECUTE format('ALTER TABLE records ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    RETURN true;
END
$$;

-- the months of the stored records, this month and the next
SELECT kpe_record_partition(m) FROM (
    SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m FROM records_v3
    UNION SELECT now() UNION SELECT now() + interval '1 month') AS months;

INSERT INTO record_keys (sam_serial, counter, hash, code, received_at)
    SELECT sam_serial, counter, hash, code, received_at FROM records_v3;
INSERT INTO records SELECT sam_serial, counter, hash, code, record_id, terminal_id, site_id, service, card_type,
    subject, fingerprint, rec_time, prev_hash, flags, received_at, encoded FROM records_v3;
DROP TABLE records_v3;

ALTER TABLE records ADD PRIMARY KEY (sam_serial, counter, received_at);
ALTER TABLE records ADD FOREIGN KEY (sam_serial, counter) REFERENCES record_keys (sam_serial, counter);
CREATE INDEX records_record_id ON records (record_id);
CREATE INDEX records_prev_hash ON records (prev_hash);
CREATE INDEX records_ktpel_time ON records (rec_time) WHERE card_type = 3;
ALTER TABLE record_aliases ADD FOREIGN KEY (sam_serial, counter) REFERENCES record_keys (sam_serial, counter);
