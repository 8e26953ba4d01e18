-- Review workflow, SQLite flavour. Same logical schema as
-- migrations/postgres/0002_workflow.sql; keep the two in step. Lists are
-- JSON arrays in TEXT; timestamps are RFC 3339 TEXT as written by sqlx's
-- chrono support.

-- Working copies: a pending revision of a live article, edited and reviewed
-- while the published version stays live. At most one per article. It goes
-- with its article: a revision of nothing means nothing.
CREATE TABLE article_drafts (
    article_id INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    title      TEXT    NOT NULL,
    summary    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    tags       TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    review_due TEXT,
    status     TEXT    NOT NULL CHECK (status IN ('draft', 'in_review')),
    author     TEXT    NOT NULL,
    note       TEXT,
    updated_at TEXT    NOT NULL
);

-- Work for a role or a person. No foreign key on purpose: like versions,
-- tasks are history and outlive a deleted article. AUTOINCREMENT so ids are
-- never reused.
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL CHECK (kind IN ('review', 'update')),
    article_id    INTEGER NOT NULL,
    assignee_role TEXT,
    assignee_user TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('open', 'done')),
    note          TEXT,
    created_by    TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    due_at        TEXT,
    closed_at     TEXT,
    closed_by     TEXT
);

-- Task lists are read by status and role; decisions close by article.
CREATE INDEX tasks_status_assignee_role ON tasks (status, assignee_role);
CREATE INDEX tasks_article_id ON tasks (article_id);
