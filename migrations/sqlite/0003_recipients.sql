-- The recipient directory: each person's contact points. Personal data, kept outside the
-- append-only log so that it can be erased; the log records only that (and which fields of)
-- a profile changed, in the same transaction (see docs/decisions/0033-recipient-directory.md).
-- Not a projection: it is not a function of the log, and replay leaves it alone.
CREATE TABLE recipients (
    user_id       TEXT PRIMARY KEY,
    display_name  TEXT,
    email         TEXT,
    phone         TEXT,
    locale        TEXT,
    time_zone     TEXT,
    updated_at    TEXT NOT NULL
);
