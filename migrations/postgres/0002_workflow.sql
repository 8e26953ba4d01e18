-- Review workflow, PostgreSQL flavour. The SQLite flavour
-- (migrations/sqlite/0002_workflow.sql) holds the same logical schema; keep
-- the two in step.

-- Working copies: a pending revision of a live article, edited and reviewed
-- while the published version stays live. At most one per article. It goes
-- with its article: a revision of nothing means nothing.
CREATE TABLE article_drafts (
    article_id BIGINT      PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    title      TEXT        NOT NULL,
    summary    TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    category   TEXT        NOT NULL,
    tags       TEXT[]      NOT NULL,
    audience   TEXT[]      NOT NULL,
    review_due TIMESTAMPTZ,
    status     TEXT        NOT NULL CHECK (status IN ('draft', 'in_review')),
    author     TEXT        NOT NULL,
    note       TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Work for a role or a person. No foreign key on purpose: like versions,
-- tasks are history and outlive a deleted article.
CREATE TABLE tasks (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT        NOT NULL CHECK (kind IN ('review', 'update')),
    article_id    BIGINT      NOT NULL,
    assignee_role TEXT,
    assignee_user TEXT,
    status        TEXT        NOT NULL CHECK (status IN ('open', 'done')),
    note          TEXT,
    created_by    TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    due_at        TIMESTAMPTZ,
    closed_at     TIMESTAMPTZ,
    closed_by     TEXT
);

-- Task lists are read by status and role; decisions close by article.
CREATE INDEX tasks_status_assignee_role ON tasks (status, assignee_role);
CREATE INDEX tasks_article_id ON tasks (article_id);
