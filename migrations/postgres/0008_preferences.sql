-- Reader preferences and custom groups, PostgreSQL flavour (migrations/sqlite/0008
-- same logical schema; keep the two in step). One row per user who chose
-- something; a missing row or NULL means "the default for my roles".
CREATE TABLE user_preferences (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    level      TEXT        CHECK (level IN ('summary', 'detailed')),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Custom groups defined by admins (built-in roles are in the code's role
-- table). Users hold them like roles; they widen article and section
-- audiences and grant no permissions.
CREATE TABLE groups (
    name        TEXT        PRIMARY KEY,
    description TEXT        NOT NULL DEFAULT '',
    created_by  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
