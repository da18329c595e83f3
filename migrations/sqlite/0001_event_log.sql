-- The append-only event log. Positions are assigned by the single writer (BEGIN IMMEDIATE),
-- so they are gap-free and follow commit order (see docs/decisions/0002-gap-free-positions.md).
CREATE TABLE events (
    position        INTEGER PRIMARY KEY CHECK (position > 0),
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    event_id        BLOB    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;

-- One row per projection: the version its tables were built for and how far they are.
CREATE TABLE projection_status (
    name        TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    rebuilt_at  TEXT    NOT NULL
);
