-- Inserts new articles (version 1) from a JSON array of rows (see
-- `rows_json` in postgres.rs) in one statement, in input order.
INSERT INTO articles (slug, title, summary, body, category, tags, audience, status,
                      owner, version, created_at, updated_at, published_at, review_due)
SELECT value ->> 'slug', value ->> 'title', value ->> 'summary', value ->> 'body',
       value ->> 'category', value -> 'tags', value -> 'audience', value ->> 'status',
       ?2, 1, ?3, ?3, value ->> 'published_at', value ->> 'review_due'
FROM json_each(?1)
ORDER BY key
RETURNING id, slug
