-- Claims on due deliveries: which worker (node) is attempting one, until when. A lease is a
-- claim, not a fact: it is not in the log, and an expired one lets another worker try again.
CREATE TABLE delivery_leases (
    delivery_id UUID        PRIMARY KEY,
    owner       TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
