-- The director's report: one row per article in category $1 / status $2
-- (NULL = any), with uses, readers and feedback counted over events in
-- [$3, $4) (NULL = open) and ratings and votes over all time. The caller
-- checks read permission, sorts and pages.
WITH views AS (
    SELECT article_id,
           count(*) FILTER (WHERE source = 'server') AS uses,
           count(DISTINCT user_id) AS readers
    FROM view_events
    WHERE ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
    GROUP BY article_id
), stars AS (
    SELECT article_id, avg(stars)::float8 AS avg_rating, count(*) AS ratings
    FROM ratings GROUP BY article_id
), votes AS (
    SELECT article_id, (100.0 * avg(CASE WHEN helpful THEN 1 ELSE 0 END))::float8 AS helpful_pct
    FROM helpful_votes GROUP BY article_id
), comments AS (
    SELECT article_id, count(*) AS feedback
    FROM feedback
    WHERE ($3::timestamptz IS NULL OR created_at >= $3)
      AND ($4::timestamptz IS NULL OR created_at < $4)
    GROUP BY article_id
), reviews AS (
    SELECT article_id, max(closed_at) AS reviewed
    FROM tasks WHERE kind = 'review' AND status = 'done' GROUP BY article_id
)
SELECT a.id, a.slug, a.title, a.category, a.status, a.owner, a.audience,
       coalesce(r.reviewed, a.published_at) AS last_reviewed, a.review_due,
       coalesce(v.uses, 0) AS uses, coalesce(v.readers, 0) AS unique_readers,
       s.avg_rating, coalesce(s.ratings, 0) AS ratings, h.helpful_pct,
       coalesce(c.feedback, 0) AS feedback
FROM articles a
LEFT JOIN views v ON v.article_id = a.id
LEFT JOIN stars s ON s.article_id = a.id
LEFT JOIN votes h ON h.article_id = a.id
LEFT JOIN comments c ON c.article_id = a.id
LEFT JOIN reviews r ON r.article_id = a.id
WHERE ($1::text IS NULL OR a.category = $1) AND ($2::text IS NULL OR a.status = $2)
