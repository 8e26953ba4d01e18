-- Notifications and escalation markers, PostgreSQL flavour. The SQLite
-- flavour (migrations/sqlite/0005_notifications.sql) holds the same logical
-- schema; keep the two in step.

-- Messages for one user. No foreign keys on purpose: like tasks, they are
-- history and outlive a deleted article or task.
CREATE TABLE notifications (
    id         BIGSERIAL   PRIMARY KEY,
    recipient  TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    article_id BIGINT,
    task_id    BIGINT,
    message    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    read_at    TIMESTAMPTZ
);

-- Serves a user's list and unread count.
CREATE INDEX notifications_recipient_read_at ON notifications (recipient, read_at);

-- One row per escalation step sent, so each step is sent exactly once.
CREATE TABLE escalations (
    task_id BIGINT      NOT NULL,
    step    INTEGER     NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (task_id, step)
);
