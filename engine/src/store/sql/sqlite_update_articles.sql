-- Replaces the content of existing articles from a JSON array of rows (see
-- `rows_json` in postgres.rs) in one statement, bumping each version.
UPDATE articles
SET slug = d.value ->> 'slug', title = d.value ->> 'title',
    summary = d.value ->> 'summary', body = d.value ->> 'body',
    category = d.value ->> 'category', tags = d.value -> 'tags',
    audience = d.value -> 'audience', status = d.value ->> 'status',
    version = version + 1, updated_at = ?2,
    published_at = d.value ->> 'published_at', review_due = d.value ->> 'review_due'
FROM json_each(?1) AS d
WHERE articles.id = d.value ->> 'id'
