-- kpe-backoffice schema, version 3: one record, one code (docs/records.md, docs/backoffice.md).
-- Numbered 3: version 2 is SAM certificate pinning.
--
-- A version-1 record (any ECDSA s) has a second valid encoding, its
-- signature with s replaced by n - s, whose hash and code differ. Both are
-- the same record: the first to arrive is stored in records, the other's
-- hash and code are kept here, so its code verifies and a successor naming
-- its hash follows it. Version-2 records have one encoding and no aliases.
CREATE TABLE record_aliases (
    hash       bytea  PRIMARY KEY CHECK (length(hash) = 32),
    code       text   NOT NULL UNIQUE,
    sam_serial bytea  NOT NULL,
    counter    bigint NOT NULL,
    FOREIGN KEY (sam_serial, counter) REFERENCES records (sam_serial, counter)
);
CREATE INDEX record_aliases_record ON record_aliases (sam_serial, counter);

-- A counter-conflict alarm is raised once per SAM serial, counter and
-- content hash of the conflicting record: resubmissions insert nothing.
ALTER TABLE alarms ADD COLUMN content bytea CHECK (content IS NULL OR length(content) = 32);
CREATE UNIQUE INDEX alarms_once ON alarms (kind, sam_serial, counter, content) WHERE content IS NOT NULL;
