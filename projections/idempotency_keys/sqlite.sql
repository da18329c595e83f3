CREATE TABLE {table} (
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    notification_id BLOB    NOT NULL,
    recipient       TEXT    NOT NULL,
    suppressed      INTEGER NOT NULL,
    reason          TEXT,
    position        INTEGER NOT NULL,
    PRIMARY KEY (idempotency_key, notification_id)
);
