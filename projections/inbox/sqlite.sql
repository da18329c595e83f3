CREATE TABLE {table} (
    notification_id BLOB    PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    priority        TEXT    NOT NULL,
    critical        INTEGER NOT NULL,
    quiet           INTEGER NOT NULL,
    title           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    action_url      TEXT,
    icon            TEXT,
    sent_at         TEXT    NOT NULL,
    sent_position   INTEGER NOT NULL,
    seen_at         TEXT,
    read_at         TEXT,
    archived_at     TEXT,
    expires_at      TEXT       ,
    expired_at      TEXT       ,
    last_position   INTEGER NOT NULL
);
CREATE INDEX {table}_recipient_{gen} ON {table} (recipient, sent_position DESC);
CREATE INDEX {table}_changes_{gen} ON {table} (recipient, last_position);
CREATE INDEX {table}_expires_{gen} ON {table} (expires_at) WHERE expires_at IS NOT NULL AND expired_at IS NULL;
CREATE INDEX {table}_read_{gen} ON {table} (read_at) WHERE read_at IS NOT NULL AND expired_at IS NULL;
CREATE INDEX {table}_unread_{gen} ON {table} (sent_at) WHERE read_at IS NULL AND expired_at IS NULL;
