-- Replaces the content of existing articles from a JSON array of rows (see
-- `rows_json` in postgres.rs) in one statement, bumping each version.
UPDATE articles AS a
SET slug = d.slug, title = d.title, summary = d.summary, body = d.body,
    category = d.category,
    tags = ARRAY(SELECT jsonb_array_elements_text(d.tags)),
    audience = ARRAY(SELECT jsonb_array_elements_text(d.audience)),
    status = d.status, version = a.version + 1, updated_at = $2,
    published_at = d.published_at, review_due = d.review_due
FROM jsonb_to_recordset($1::jsonb) AS d(
         id bigint, slug text, title text, summary text, body text, category text,
         tags jsonb, audience jsonb, status text, published_at timestamptz,
         review_due timestamptz)
WHERE a.id = d.id
