-- Passwords and browser sessions, PostgreSQL flavour. The SQLite flavour
-- (migrations/sqlite/0004_sessions.sql) holds the same logical schema; keep
-- the two in step.

-- A PHC-format password hash; NULL for users who sign in by token only.
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- Browser sessions. Only the SHA-256 hex of the cookie value is stored.
-- A user's sessions go with the user.
CREATE TABLE sessions (
    id_hash      TEXT        PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);

-- Serves the clean-up of expired sessions.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Sign-in clears a user's expired sessions, and deleting a user cascades.
CREATE INDEX sessions_user ON sessions (user_id);
