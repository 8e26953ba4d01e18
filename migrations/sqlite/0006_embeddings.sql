-- Stored passage embeddings, SQLite flavour. Same logical schema as
-- migrations/postgres/0006_embeddings.sql; keep the two in step. Timestamps
-- are RFC 3339 TEXT as written by sqlx's chrono support.

-- The passage vectors of one article under one embedding model, tagged with
-- the content hash of the passages they were computed from. Derived data:
-- not versioned, audited or in the outbox, and it goes with its article.
-- `vectors` holds the vectors one after another as little-endian f32, so
-- its length is a multiple of dim * 4.
CREATE TABLE embeddings (
    article_id   INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    model_id     TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    dim          INTEGER NOT NULL CHECK (dim > 0),
    vectors      BLOB    NOT NULL CHECK (length(vectors) % (dim * 4) = 0),
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (article_id, model_id)
);

-- Serves loading one model's vectors in pages by article id.
CREATE INDEX embeddings_model_article ON embeddings (model_id, article_id);
