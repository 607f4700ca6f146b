-- kpe-backoffice schema, version 2: SAM certificate pinning (docs/backoffice.md).
-- sams.cert is the first valid certificate stored for the serial and is not
-- replaced; a different certificate for the serial is recorded here once,
-- with its alarm.
CREATE TABLE sam_certificate_conflicts (
    serial     bytea       NOT NULL REFERENCES sams (serial),
    cert_hash  bytea       NOT NULL CHECK (length(cert_hash) = 32),
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (serial, cert_hash)
);
