CREATE TABLE {table} (
    user_id    TEXT    PRIMARY KEY,
    windows    TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    position   INTEGER NOT NULL
);
