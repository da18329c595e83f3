CREATE TABLE {table} (
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    notification_id UUID    NOT NULL,
    recipient       TEXT    NOT NULL,
    suppressed      BOOLEAN NOT NULL,
    reason          TEXT,
    position        BIGINT  NOT NULL,
    PRIMARY KEY (idempotency_key, notification_id)
);
