-- Stored passage embeddings, PostgreSQL flavour. The SQLite flavour
-- (migrations/sqlite/0006_embeddings.sql) holds the same logical schema;
-- keep the two in step.

-- The passage vectors of one article under one embedding model, tagged with
-- the content hash of the passages they were computed from. Derived data:
-- not versioned, audited or in the outbox, and it goes with its article.
-- `vectors` holds the vectors one after another as little-endian f32, so
-- its length is a multiple of dim * 4.
CREATE TABLE embeddings (
    article_id   BIGINT      NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    model_id     TEXT        NOT NULL,
    content_hash TEXT        NOT NULL,
    dim          INTEGER     NOT NULL CHECK (dim > 0),
    vectors      BYTEA       NOT NULL CHECK (octet_length(vectors) % (dim * 4) = 0),
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (article_id, model_id)
);

-- Serves loading one model's vectors in pages by article id.
CREATE INDEX embeddings_model_article ON embeddings (model_id, article_id);
