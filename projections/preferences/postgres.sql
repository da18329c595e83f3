CREATE TABLE {table} (
    user_id    TEXT        NOT NULL,
    category   TEXT        NOT NULL,
    channel    TEXT        NOT NULL,
    enabled    BOOLEAN     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    position   BIGINT      NOT NULL,
    PRIMARY KEY (user_id, category, channel)
);
CREATE INDEX {table}_muted_{gen} ON {table} (category, channel) WHERE NOT enabled;
