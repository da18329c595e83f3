CREATE TABLE {table} (
    delivery_id     BLOB    PRIMARY KEY,
    notification_id BLOB    NOT NULL,
    recipient       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    due_at          TEXT,
    unless_flag     TEXT,
    reason          TEXT,
    attempts        INTEGER NOT NULL,
    last_error      TEXT,
    provider_id     TEXT,
    planned_at      TEXT    NOT NULL,
    planned_position INTEGER NOT NULL,
    updated_at      TEXT    NOT NULL,
    digest_id       BLOB,
    position        INTEGER NOT NULL
);
CREATE INDEX {table}_due_{gen} ON {table} (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX {table}_notification_{gen} ON {table} (notification_id);
CREATE INDEX {table}_status_{gen} ON {table} (status, updated_at);
CREATE INDEX {table}_deferred_{gen} ON {table} (recipient) WHERE status = 'deferred';
