-- Reader preferences, SQLite flavour (same logical schema as
-- migrations/postgres/0008_preferences.sql; keep the two in step).
-- Timestamps are RFC 3339 TEXT as written by sqlx's chrono support.
CREATE TABLE user_preferences (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    level      TEXT    CHECK (level IN ('summary', 'detailed')),
    updated_at TEXT    NOT NULL
);
