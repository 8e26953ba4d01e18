-- One batch of usage events, five statements in one transaction. Each
-- reads a JSON array of rows ($1). Searches and clicks keep their user only
-- for users who opted in to search history (`usage_prefs`); the
-- per-(user, article) totals always count them, without the query.
INSERT INTO view_events (at, user_id, article_id, source, dwell_ms)
SELECT at, user_id, article_id, source, dwell_ms
FROM jsonb_to_recordset($1::jsonb)
    AS t(at timestamptz, user_id bigint, article_id bigint, source text, dwell_ms bigint);
-- split --
INSERT INTO search_events
    (id, at, user_id, query, query_norm, filters, mode, result_count, latency_ms)
SELECT t.id, t.at,
       CASE WHEN EXISTS (SELECT 1 FROM usage_prefs p
                         WHERE p.user_id = t.user_id AND p.keep_search_history)
            THEN t.user_id END,
       t.query, t.query_norm, t.filters, t.mode, t.result_count, t.latency_ms
FROM jsonb_to_recordset($1::jsonb)
    AS t(id text, at timestamptz, user_id bigint, query text, query_norm text, filters jsonb,
         mode text, result_count bigint, latency_ms float8)
ON CONFLICT (id) DO NOTHING;
-- split --
INSERT INTO click_events (at, search_id, user_id, article_id, position)
SELECT t.at, t.search_id,
       CASE WHEN EXISTS (SELECT 1 FROM usage_prefs p
                         WHERE p.user_id = t.user_id AND p.keep_search_history)
            THEN t.user_id END,
       t.article_id, t.position
FROM jsonb_to_recordset($1::jsonb)
    AS t(at timestamptz, search_id text, user_id bigint, article_id bigint, position int);
-- split --
INSERT INTO user_article_usage (user_id, article_id, views, clicks, dwell_ms, last_at)
SELECT user_id, article_id, views, clicks, dwell_ms, last_at
FROM jsonb_to_recordset($1::jsonb)
    AS t(user_id bigint, article_id bigint, views bigint, clicks bigint, dwell_ms bigint,
         last_at timestamptz)
ON CONFLICT (user_id, article_id) DO UPDATE SET
    views = user_article_usage.views + EXCLUDED.views,
    clicks = user_article_usage.clicks + EXCLUDED.clicks,
    dwell_ms = user_article_usage.dwell_ms + EXCLUDED.dwell_ms,
    last_at = GREATEST(user_article_usage.last_at, EXCLUDED.last_at);
-- split --
UPDATE reading_assignments AS r SET done_at = t.at
FROM jsonb_to_recordset($1::jsonb) AS t(user_id bigint, article_id bigint, at timestamptz)
WHERE r.user_id = t.user_id AND r.article_id = t.article_id AND r.kind = 'read'
  AND r.done_at IS NULL AND t.at >= r.assigned_at;
