CREATE TABLE {table} (
    digest_id       BLOB    NOT NULL,
    notification_id BLOB    NOT NULL,
    recipient       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    closes_at       TEXT    NOT NULL,
    sent_at         TEXT    NOT NULL,
    closed_at       TEXT,
    position        INTEGER NOT NULL,
    PRIMARY KEY (digest_id, notification_id)
);
CREATE INDEX {table}_open_{gen} ON {table} (closes_at) WHERE closed_at IS NULL;
