-- Explicit requests for an article ("ask for an article on this" on an
-- empty search), PostgreSQL flavour; migrations/sqlite/0011_article_requests.sql
-- holds the same logical schema. One row per (normalised query, user): a
-- person asking again only moves `at`, so the count is of people. Content
-- gaps (`GET /v1/prompts/gaps`) read it; nothing shows who asked. No
-- foreign key to users, like the other usage tables.
CREATE TABLE article_requests (
    query_norm text        NOT NULL,
    user_id    bigint      NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (query_norm, user_id)
);
CREATE INDEX article_requests_at ON article_requests (at);
