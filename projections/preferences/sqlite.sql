CREATE TABLE {table} (
    user_id    TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    enabled    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);
CREATE INDEX {table}_muted_{gen} ON {table} (category, channel) WHERE NOT enabled;
