-- Inserts new articles (version 1) from a JSON array of rows (see
-- `rows_json` in postgres.rs) in one statement. ORDINALITY keeps ids in
-- input order.
INSERT INTO articles (slug, title, summary, body, category, tags, audience, status,
                      owner, version, created_at, updated_at, published_at, review_due)
SELECT d.slug, d.title, d.summary, d.body, d.category,
       ARRAY(SELECT jsonb_array_elements_text(d.tags)),
       ARRAY(SELECT jsonb_array_elements_text(d.audience)),
       d.status, $2, 1, $3, $3, d.published_at, d.review_due
FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (
         slug text, title text, summary text, body text, category text, tags jsonb,
         audience jsonb, status text, published_at timestamptz, review_due timestamptz))
     WITH ORDINALITY AS d(slug, title, summary, body, category, tags, audience, status,
                          published_at, review_due, ord)
ORDER BY d.ord
RETURNING id, slug
