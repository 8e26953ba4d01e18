-- Usage events, ratings, feedback, privacy preferences and reading
-- assignments, PostgreSQL flavour. The SQLite flavour
-- (migrations/sqlite/0010_usage.sql) holds the same logical schema; keep the
-- two in step.
--
-- No foreign keys to articles on purpose: events are written in batches off
-- the request path, and an article deleted between the event and the flush
-- must not fail the whole batch. Reports join `articles`, so events of
-- deleted articles simply drop out.

-- Article views. `source` is `server` for a read through the API (these are
-- the "uses") and `client` for a dwell time the client reported afterwards.
-- `user_id` is NULL for anonymous readers.
CREATE TABLE view_events (
    id         BIGSERIAL   PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    user_id    BIGINT,
    article_id BIGINT      NOT NULL,
    source     TEXT        NOT NULL CHECK (source IN ('server', 'client')),
    dwell_ms   BIGINT      CHECK (dwell_ms >= 0)
);
CREATE INDEX view_events_article_at ON view_events (article_id, at);
CREATE INDEX view_events_user_at ON view_events (user_id, at);
CREATE INDEX view_events_at ON view_events (at);

-- Searches. `id` is the search id handed to the client (clicks refer to
-- it). `user_id` is kept only for users who opted in to search history;
-- everyone else's queries are stored without identity.
CREATE TABLE search_events (
    id           TEXT             PRIMARY KEY,
    at           TIMESTAMPTZ      NOT NULL,
    user_id      BIGINT,
    query        TEXT             NOT NULL,
    query_norm   TEXT             NOT NULL,
    filters      JSONB            NOT NULL,
    mode         TEXT             NOT NULL,
    result_count BIGINT           NOT NULL,
    latency_ms   DOUBLE PRECISION NOT NULL
);
CREATE INDEX search_events_at ON search_events (at);
CREATE INDEX search_events_user_at ON search_events (user_id, at);

-- Clicks on a search result. Identity only under the same opt-in as the
-- search (the search id would otherwise tie the query to the user).
CREATE TABLE click_events (
    id         BIGSERIAL   PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    search_id  TEXT,
    user_id    BIGINT,
    article_id BIGINT      NOT NULL,
    position   INTEGER     NOT NULL CHECK (position >= 0)
);
CREATE INDEX click_events_search_id ON click_events (search_id);
CREATE INDEX click_events_at ON click_events (at);

-- Implicit feedback per (user, article), maintained by the event writer in
-- the same transaction as the events: what a recommender trains on, one row
-- per pair instead of a scan over every event. Rows also exist (with zero
-- counts) for pairs that only have a rating or a helpful vote, so a trainer
-- reads everything with one LEFT JOIN onto `ratings` and `helpful_votes`.
CREATE TABLE user_article_usage (
    user_id    BIGINT      NOT NULL,
    article_id BIGINT      NOT NULL,
    views      BIGINT      NOT NULL DEFAULT 0,
    clicks     BIGINT      NOT NULL DEFAULT 0,
    dwell_ms   BIGINT      NOT NULL DEFAULT 0,
    last_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, article_id)
);

-- Explicit ratings: one per user and article, changeable.
CREATE TABLE ratings (
    user_id    BIGINT      NOT NULL,
    article_id BIGINT      NOT NULL,
    stars      SMALLINT    NOT NULL CHECK (stars BETWEEN 1 AND 5),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, article_id)
);
CREATE INDEX ratings_article_id ON ratings (article_id);

-- Helpful / not helpful: one vote per user and article, changeable.
CREATE TABLE helpful_votes (
    user_id    BIGINT      NOT NULL,
    article_id BIGINT      NOT NULL,
    helpful    BOOLEAN     NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, article_id)
);
CREATE INDEX helpful_votes_article_id ON helpful_votes (article_id);

-- Feedback comments; each opened the update task `task_id` for the owner.
CREATE TABLE feedback (
    id         BIGSERIAL   PRIMARY KEY,
    article_id BIGINT      NOT NULL,
    user_id    BIGINT,
    username   TEXT        NOT NULL,
    comment    TEXT        NOT NULL,
    task_id    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX feedback_article_id ON feedback (article_id);

-- Per-user privacy choice; no row = the default (no search history).
CREATE TABLE usage_prefs (
    user_id             BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    keep_search_history BOOLEAN     NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- Reading (or review) assignments, one row per person: an assignment to a
-- role is expanded to its members when it is made. `done_at` is set by the
-- first view after it was assigned (read) or the assignee's rating, vote or
-- feedback (review).
CREATE TABLE reading_assignments (
    id          BIGSERIAL   PRIMARY KEY,
    article_id  BIGINT      NOT NULL,
    user_id     BIGINT      NOT NULL,
    username    TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('read', 'review')),
    via_role    TEXT,
    assigned_by TEXT        NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    done_at     TIMESTAMPTZ,
    UNIQUE (article_id, user_id, kind)
);
CREATE INDEX reading_assignments_user ON reading_assignments (user_id, done_at);
