-- External notification channels, SQLite flavour. Same logical schema as
-- migrations/postgres/0007_deliveries.sql; keep the two in step.
-- Timestamps are RFC 3339 TEXT as written by sqlx's chrono support, so
-- they compare correctly as text.

-- Where a user can be reached outside the application. Both optional.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN webhook_url TEXT;

-- Webhooks an admin registered for a category's publications. The secret
-- is kept in clear: it signs every delivery, so it must be readable.
CREATE TABLE category_webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    category   TEXT    NOT NULL,
    url        TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX category_webhooks_category ON category_webhooks (category);

-- The delivery outbox: one row per (event, recipient, channel), written in
-- the transaction of the event it announces and worked off by the delivery
-- worker. The unique key makes enqueueing idempotent; `claimed_until` is
-- the lease of the worker sending it.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key       TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    subscription_id INTEGER,
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    claimed_until   TEXT,
    delivered_at    TEXT,
    failed_at       TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    UNIQUE (event_key, recipient, channel)
);

-- Serves the worker's claim: only rows still to be sent.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
