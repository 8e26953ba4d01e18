-- KMT schema, SQLite flavour. Same logical schema as migrations/postgres;
-- keep the two in step. Lists (tags, audience, roles) are JSON arrays in
-- TEXT; timestamps are RFC 3339 TEXT as written by sqlx's chrono support.

-- AUTOINCREMENT so ids of deleted articles are never reused.
CREATE TABLE articles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    slug         TEXT    NOT NULL UNIQUE,
    title        TEXT    NOT NULL,
    summary      TEXT    NOT NULL DEFAULT '',
    body         TEXT    NOT NULL DEFAULT '',
    category     TEXT    NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '[]',
    audience     TEXT    NOT NULL DEFAULT '[]',
    status       TEXT    NOT NULL
        CHECK (status IN ('draft', 'in_review', 'published', 'needs_update', 'retired')),
    owner        TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    published_at TEXT,
    review_due   TEXT
);

-- Immutable snapshots. No foreign key on purpose: the history of a deleted
-- article stays.
CREATE TABLE article_versions (
    article_id INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    title      TEXT    NOT NULL,
    summary    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    tags       TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (article_id, version)
);

-- Changes the indexes must apply, read by seq. AUTOINCREMENT keeps seqs
-- strictly increasing even after the newest row is deleted.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('upsert', 'delete', 'reindex')),
    created_at TEXT    NOT NULL
);

-- Hash-chained audit trail (see engine/src/store/audit.rs).
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    roles        TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL
);

-- Only hashes of tokens are stored; the unique index serves look-ups.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   TEXT    NOT NULL,
    last_used_at TEXT
);

CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
