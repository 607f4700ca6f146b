-- kpe-backoffice schema, version 5: alarms acknowledged with a comment,
-- their history kept (docs/backoffice.md, "Alarms"). Numbered 5: version 4
-- is the record partitions.
--
-- An alarm is open until acknowledged, and stays acknowledged: the
-- one-alarm-per-key rules raise nothing new when its condition repeats.
-- Its history is the row itself ("raised" at alarms.at) followed by its
-- alarm_events, in id order. Events are only ever inserted.
ALTER TABLE alarms ADD COLUMN state text NOT NULL DEFAULT 'open'
    CHECK (state IN ('open', 'acknowledged'));
CREATE INDEX alarms_state ON alarms (state, id);

CREATE TABLE alarm_events (
    id       bigserial   PRIMARY KEY,
    alarm_id bigint      NOT NULL REFERENCES alarms (id),
    type     text        NOT NULL CHECK (type IN ('acknowledged')),
    actor    text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    comment  text        NOT NULL CHECK (length(comment) BETWEEN 1 AND 500),
    at       timestamptz NOT NULL
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, id);
