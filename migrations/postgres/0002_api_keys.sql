-- Service API keys. Only a SHA-256 hash of each key is kept; the key itself is shown once,
-- when it is created. Credentials are configuration, not notification facts, so they live
-- outside the event log (see docs/decisions/0011-api-keys-outside-the-log.md).
CREATE TABLE api_keys (
    id          TEXT        PRIMARY KEY,
    name        TEXT        NOT NULL,
    scopes      TEXT        NOT NULL,
    key_hash    TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
