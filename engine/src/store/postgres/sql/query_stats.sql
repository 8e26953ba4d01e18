-- Search figures per normalised query over searches in [$1, $2) (NULL =
-- open), most searched first, at most $3 queries. A search counts as
-- clicked when any click names its id.
WITH s AS (
    SELECT id, query_norm, result_count, at
    FROM search_events
    WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
), c AS (
    SELECT search_id, count(*) AS clicks
    FROM click_events WHERE search_id IN (SELECT id FROM s) GROUP BY search_id
)
SELECT s.query_norm AS query, count(*) AS searches,
       count(*) FILTER (WHERE s.result_count = 0) AS zero_results,
       avg(s.result_count)::float8 AS avg_results,
       count(c.search_id) AS clicked_searches,
       coalesce(sum(c.clicks), 0)::bigint AS clicks,
       max(s.at) AS last_at
FROM s LEFT JOIN c ON c.search_id = s.id
GROUP BY s.query_norm
ORDER BY searches DESC, s.query_norm COLLATE "C"
LIMIT $3
