-- One batch of usage events, five statements in one transaction. Each
-- reads a JSON array of rows (?1). Searches and clicks keep their user only
-- for users who opted in to search history (`usage_prefs`); the
-- per-(user, article) totals always count them, without the query.
INSERT INTO view_events (at, user_id, article_id, source, dwell_ms)
SELECT value ->> 'at', value ->> 'user_id', value ->> 'article_id', value ->> 'source',
       value ->> 'dwell_ms'
FROM json_each(?1) ORDER BY key;
-- split --
INSERT OR IGNORE INTO search_events
    (id, at, user_id, query, query_norm, filters, mode, result_count, latency_ms)
SELECT value ->> 'id', value ->> 'at',
       CASE WHEN EXISTS (SELECT 1 FROM usage_prefs p
                         WHERE p.user_id = value ->> 'user_id' AND p.keep_search_history)
            THEN value ->> 'user_id' END,
       value ->> 'query', value ->> 'query_norm', value -> 'filters', value ->> 'mode',
       value ->> 'result_count', value ->> 'latency_ms'
FROM json_each(?1) ORDER BY key;
-- split --
INSERT INTO click_events (at, search_id, user_id, article_id, position)
SELECT value ->> 'at', value ->> 'search_id',
       CASE WHEN EXISTS (SELECT 1 FROM usage_prefs p
                         WHERE p.user_id = value ->> 'user_id' AND p.keep_search_history)
            THEN value ->> 'user_id' END,
       value ->> 'article_id', value ->> 'position'
FROM json_each(?1) ORDER BY key;
-- split --
INSERT INTO user_article_usage (user_id, article_id, views, clicks, dwell_ms, last_at)
SELECT value ->> 'user_id', value ->> 'article_id', value ->> 'views', value ->> 'clicks',
       value ->> 'dwell_ms', value ->> 'last_at'
FROM json_each(?1) WHERE true
ON CONFLICT (user_id, article_id) DO UPDATE SET
    views = views + excluded.views,
    clicks = clicks + excluded.clicks,
    dwell_ms = dwell_ms + excluded.dwell_ms,
    last_at = max(last_at, excluded.last_at);
-- split --
UPDATE reading_assignments AS r SET done_at = t.at
FROM (SELECT value ->> 'user_id' AS user_id, value ->> 'article_id' AS article_id,
             value ->> 'at' AS at
      FROM json_each(?1)) AS t
WHERE r.user_id = t.user_id AND r.article_id = t.article_id AND r.kind = 'read'
  AND r.done_at IS NULL AND t.at >= r.assigned_at;
