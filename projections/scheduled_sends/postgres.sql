CREATE TABLE {table} (
    schedule_id     UUID        PRIMARY KEY,
    send_at         TIMESTAMPTZ NOT NULL,
    status          TEXT        NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT,
    category        TEXT        NOT NULL,
    title           TEXT        NOT NULL,
    recipients      INTEGER     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    position        BIGINT      NOT NULL
);
CREATE INDEX {table}_pending_{gen} ON {table} (send_at) WHERE status = 'pending';
CREATE INDEX {table}_status_{gen} ON {table} (status, send_at);
CREATE INDEX {table}_key_{gen} ON {table} (idempotency_key) WHERE idempotency_key IS NOT NULL;
