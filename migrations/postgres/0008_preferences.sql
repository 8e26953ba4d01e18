-- Reader preferences, PostgreSQL flavour (migrations/sqlite/0008 holds the
-- same logical schema; keep the two in step). One row per user who chose
-- something; a missing row or NULL means "the default for my roles".
CREATE TABLE user_preferences (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    level      TEXT        CHECK (level IN ('summary', 'detailed')),
    updated_at TIMESTAMPTZ NOT NULL
);
