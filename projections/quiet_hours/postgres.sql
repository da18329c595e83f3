CREATE TABLE {table} (
    user_id    TEXT        PRIMARY KEY,
    windows    TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    position   BIGINT      NOT NULL
);
