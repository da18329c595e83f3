CREATE TABLE {table} (
    user_id    TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    schedule   TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);
