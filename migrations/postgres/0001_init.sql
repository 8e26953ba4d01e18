-- KMT schema, PostgreSQL flavour. The SQLite flavour (migrations/sqlite)
-- holds the same logical schema; keep the two in step.

-- Current state of each article. Ids come from a sequence and are never
-- reused, so a deleted article's id cannot be mistaken for a new one.
CREATE TABLE articles (
    id           BIGSERIAL PRIMARY KEY,
    slug         TEXT        NOT NULL UNIQUE,
    title        TEXT        NOT NULL,
    summary      TEXT        NOT NULL DEFAULT '',
    body         TEXT        NOT NULL DEFAULT '',
    category     TEXT        NOT NULL,
    tags         TEXT[]      NOT NULL DEFAULT '{}',
    audience     TEXT[]      NOT NULL DEFAULT '{}',
    status       TEXT        NOT NULL
        CHECK (status IN ('draft', 'in_review', 'published', 'needs_update', 'retired')),
    owner        TEXT        NOT NULL,
    version      INTEGER     NOT NULL CHECK (version >= 1),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    review_due   TIMESTAMPTZ
);

-- Immutable snapshots. No foreign key on purpose: the history of a deleted
-- article stays.
CREATE TABLE article_versions (
    article_id BIGINT      NOT NULL,
    version    INTEGER     NOT NULL,
    title      TEXT        NOT NULL,
    summary    TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    category   TEXT        NOT NULL,
    tags       TEXT[]      NOT NULL,
    audience   TEXT[]      NOT NULL,
    status     TEXT        NOT NULL,
    author     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article_id, version)
);

-- Changes the indexes must apply, read by seq (the primary key). Writers
-- are serialised, so seqs commit in order.
CREATE TABLE outbox (
    seq        BIGSERIAL PRIMARY KEY,
    article_id BIGINT      NOT NULL,
    kind       TEXT        NOT NULL CHECK (kind IN ('upsert', 'delete', 'reindex')),
    created_at TIMESTAMPTZ NOT NULL
);

-- Hash-chained audit trail (see engine/src/store/audit.rs).
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    target    TEXT        NOT NULL,
    details   JSONB       NOT NULL,
    prev_hash TEXT        NOT NULL,
    hash      TEXT        NOT NULL
);

CREATE TABLE users (
    id           BIGSERIAL PRIMARY KEY,
    username     TEXT        NOT NULL UNIQUE,
    display_name TEXT        NOT NULL,
    roles        TEXT[]      NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL
);

-- Only hashes of tokens are stored; the unique index serves look-ups.
CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    token_hash   TEXT        NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);

CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
