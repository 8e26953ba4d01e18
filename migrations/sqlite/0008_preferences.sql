-- Reader preferences and custom groups, SQLite flavour (same logical schema as
-- migrations/postgres/0008_preferences.sql; keep the two in step).
-- Timestamps are RFC 3339 TEXT as written by sqlx's chrono support.
CREATE TABLE user_preferences (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    level      TEXT    CHECK (level IN ('summary', 'detailed')),
    updated_at TEXT    NOT NULL
);

-- Custom groups defined by admins (built-in roles are in the code's role
-- table). Users hold them like roles; they widen article and section
-- audiences and grant no permissions.
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
