-- kpe-backoffice schema, version 1 (docs/backoffice.md).
CREATE TABLE sams (
    serial     bytea PRIMARY KEY CHECK (length(serial) = 8),
    cert       bytea,
    counters   jsonb NOT NULL DEFAULT '{"max":0}'::jsonb,
    first_seen timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE records (
    sam_serial  bytea       NOT NULL REFERENCES sams (serial),
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
    encoded     bytea       NOT NULL,
    PRIMARY KEY (sam_serial, counter),
    UNIQUE (hash),
    UNIQUE (code)
);
CREATE INDEX records_record_id ON records (record_id);
CREATE INDEX records_prev_hash ON records (prev_hash);
CREATE INDEX records_ktpel_time ON records (rec_time) WHERE card_type = 3;

CREATE TABLE terminals (
    terminal_id  text PRIMARY KEY,
    site_id      text        NOT NULL DEFAULT '',
    records      bigint      NOT NULL DEFAULT 0,
    chain_breaks bigint      NOT NULL DEFAULT 0,
    last_seen    timestamptz,
    skew_ms      bigint      NOT NULL DEFAULT 0
);

CREATE TABLE terminal_sams (
    terminal_id text  NOT NULL REFERENCES terminals (terminal_id),
    sam_serial  bytea NOT NULL REFERENCES sams (serial),
    PRIMARY KEY (terminal_id, sam_serial)
);

CREATE TABLE alarms (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL,
    terminal_id text        NOT NULL DEFAULT '',
    sam_serial  bytea,
    counter     bigint,
    detail      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL
);
