-- Notifications and escalation markers, SQLite flavour. Same logical schema
-- as migrations/postgres/0005_notifications.sql; keep the two in step.
-- Timestamps are RFC 3339 TEXT as written by sqlx's chrono support.

-- Messages for one user. No foreign keys on purpose: like tasks, they are
-- history and outlive a deleted article or task. AUTOINCREMENT so ids are
-- never reused.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    article_id INTEGER,
    task_id    INTEGER,
    message    TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    read_at    TEXT
);

-- Serves a user's list and unread count.
CREATE INDEX notifications_recipient_read_at ON notifications (recipient, read_at);

-- One row per escalation step sent, so each step is sent exactly once.
CREATE TABLE escalations (
    task_id INTEGER NOT NULL,
    step    INTEGER NOT NULL,
    sent_at TEXT    NOT NULL,
    PRIMARY KEY (task_id, step)
);
