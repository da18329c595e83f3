CREATE TABLE {table} (
    digest_id       UUID        NOT NULL,
    notification_id UUID        NOT NULL,
    recipient       TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    closes_at       TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ NOT NULL,
    closed_at       TIMESTAMPTZ,
    position        BIGINT      NOT NULL,
    PRIMARY KEY (digest_id, notification_id)
);
CREATE INDEX {table}_open_{gen} ON {table} (closes_at) WHERE closed_at IS NULL;
