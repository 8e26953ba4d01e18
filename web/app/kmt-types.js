// @ts-check
/**
 * @file The shapes of KMT's REST API (`/v1`), as JSDoc types for
 * `kmt-client.js`. Nothing runs here: the module only exports types, so
 * browsers never need to load it. The source of truth is the server's
 * OpenAPI document (`GET /v1/openapi.json`); names follow its schemas.
 * Times are RFC 3339 strings; ids are numbers.
 */

// ---- problems -------------------------------------------------------------

/**
 * One field at fault (a category rule broken by a submission).
 * @typedef {object} FieldFault
 * @property {string} field
 * @property {string} message
 */

/**
 * An `application/problem+json` body (RFC 9457): every API error.
 * @typedef {object} Problem
 * @property {string} type
 * @property {string} title
 * @property {number} status
 * @property {string} detail
 * @property {string} [field] the offending field or parameter
 * @property {FieldFault[]} [errors] every field at fault, when several are
 */

// ---- sessions and users ---------------------------------------------------

/**
 * @typedef {object} SessionInfo
 * @property {string} username
 * @property {string[]} roles
 * @property {string} csrf_token sent back as `X-CSRF-Token` on every write
 */

/**
 * @typedef {object} Me
 * @property {string} username empty when anonymous
 * @property {string[]} roles
 * @property {string[]} permissions
 */

/** @typedef {'summary'|'detailed'} Level */

/**
 * @typedef {object} Preferences
 * @property {Level|null} [level]
 */

/** @typedef {Preferences & {effective_level: Level}} PreferencesView */

/**
 * @typedef {object} User
 * @property {number} id
 * @property {string} username
 * @property {string} display_name
 * @property {string[]} roles
 * @property {string|null} [email]
 * @property {string|null} [webhook_url]
 * @property {string} created_at
 */

/**
 * @typedef {object} NewUser
 * @property {string} username 1–64 of a-z 0-9 . _ -
 * @property {string[]} roles
 * @property {string|null} [display_name]
 * @property {string|null} [email]
 * @property {string|null} [webhook_url]
 */

/**
 * @typedef {object} Contact
 * @property {string|null} [email]
 * @property {string|null} [webhook_url]
 */

/**
 * A built-in role (grants permissions) or a custom group (widens audiences).
 * @typedef {object} RoleInfo
 * @property {string} name
 * @property {'role'|'group'|string} kind
 * @property {string} description
 * @property {string[]} permissions
 * @property {string[]} members
 */

/**
 * @typedef {object} NewGroup
 * @property {string} name
 * @property {string} [description]
 */

/**
 * @typedef {object} IssuedToken
 * @property {string} username
 * @property {string} name
 * @property {string} token shown once
 */

// ---- search ---------------------------------------------------------------

/** @typedef {'hybrid'|'lexical'|'semantic'} SearchMode */
/** @typedef {'relevance'|'updated'|'title'} SearchSort */
/** @typedef {'category'|'tags'|'status'|'audience'} FacetName */

/**
 * Filters as the API spells them (`category:X`, `updated_at>=2025-01-01`),
 * or by field: `{category: ['a', 'b'], tags: 'x'}` (a field's values OR,
 * different fields AND).
 * @typedef {string[]|Record<string, string|string[]>} SearchFilter
 */

/**
 * `GET /v1/search` parameters.
 * @typedef {object} SearchParams
 * @property {string} [q]
 * @property {SearchFilter} [filter]
 * @property {FacetName[]|string} [facets]
 * @property {SearchSort} [sort]
 * @property {number} [limit] 1..=100 (server default 10)
 * @property {number} [offset] 0..=10000
 * @property {'all'|'any'} [match]
 * @property {SearchMode} [mode]
 * @property {'adaptive'|'rrf'|string} [fusion] or `convex:W`, W in 0..=1
 * @property {boolean} [explain]
 */

/**
 * @typedef {object} HitExplain
 * @property {number} fused
 * @property {number|null} [lexical]
 * @property {number|null} [lexical_rank]
 * @property {number|null} [semantic]
 * @property {number|null} [semantic_rank]
 * @property {number|null} [passage]
 */

/**
 * @typedef {object} Hit
 * @property {number} id
 * @property {string} slug
 * @property {string} title
 * @property {string} snippet HTML: escaped text, matches in `<mark>`
 * @property {number|null} [score]
 * @property {string} category
 * @property {string[]} tags
 * @property {string} status
 * @property {string} updated_at
 * @property {HitExplain|null} [explain]
 */

/**
 * @typedef {object} FacetCount
 * @property {string} value
 * @property {number} count
 */

/**
 * @typedef {object} Timings
 * @property {number} parse
 * @property {number} [embed]
 * @property {number} [vector]
 * @property {number} search
 * @property {number} facets
 * @property {number} snippets
 * @property {number} total
 */

/**
 * @typedef {object} SemanticInfo
 * @property {string} model
 * @property {string} plan
 * @property {number} allowed
 * @property {boolean} cached_query
 * @property {'rrf'|'adaptive'|{convex: number}|null} [fusion]
 */

/**
 * `GET /v1/search` results. `search_id` is added by the client from the
 * `X-Search-Id` header (present for searches with words); pass it back
 * with click events.
 * @typedef {object} SearchResults
 * @property {Hit[]} hits
 * @property {number} total
 * @property {Record<string, FacetCount[]>} facets
 * @property {boolean} relaxed
 * @property {number} fuzzy_words
 * @property {SearchMode} mode
 * @property {string|null} [did_you_mean]
 * @property {SemanticInfo|null} [semantic]
 * @property {number} took_ms
 * @property {Timings} timings
 * @property {string} [search_id]
 */

/**
 * @typedef {object} Suggestion
 * @property {string} text
 * @property {'title'|'term'} kind
 * @property {number|null} [article_id]
 * @property {string|null} [slug]
 * @property {number} score
 */

// ---- articles -------------------------------------------------------------

/** @typedef {'draft'|'in_review'|'published'|'needs_update'|'retired'} Status */

/**
 * @typedef {object} Article
 * @property {number} id
 * @property {string} slug
 * @property {string} title
 * @property {string} summary Markdown, the short level
 * @property {string} body Markdown, the detailed level
 * @property {string} category
 * @property {string[]} tags
 * @property {string[]} audience empty: every signed-in user; `public`: anyone
 * @property {Status} status
 * @property {string} owner
 * @property {number} version
 * @property {string} created_at
 * @property {string} updated_at
 * @property {string|null} [published_at]
 * @property {string|null} [review_due]
 */

/**
 * @typedef {object} SectionInfo
 * @property {string} id
 * @property {'summary'|'body'|string} field
 * @property {string|null} [title]
 * @property {string[]} audience
 */

/**
 * An article as its reader may see it (at the summary level `body` is "").
 * @typedef {Article & {level: Level, sections: SectionInfo[]}} ArticleView
 */

/**
 * @typedef {object} NewArticle
 * @property {string} title
 * @property {string} category
 * @property {string} [summary]
 * @property {string} [body]
 * @property {string[]} [tags]
 * @property {string[]} [audience]
 * @property {string|null} [slug]
 * @property {Status|null} [status]
 * @property {string|null} [review_due]
 */

/**
 * Fields present replace the stored ones.
 * @typedef {object} ArticlePatch
 * @property {string|null} [title]
 * @property {string|null} [summary]
 * @property {string|null} [body]
 * @property {string|null} [category]
 * @property {string[]|null} [tags]
 * @property {string[]|null} [audience]
 * @property {string|null} [slug]
 * @property {Status|null} [status]
 * @property {string|null} [review_due]
 * @property {number|null} [expected_version] guards against lost updates (409)
 */

/**
 * @typedef {object} ArticleVersion
 * @property {number} article_id
 * @property {number} version
 * @property {string} title
 * @property {string} summary
 * @property {string} body
 * @property {string} category
 * @property {string[]} tags
 * @property {string[]} audience
 * @property {Status} status
 * @property {string} author
 * @property {string} created_at
 */

/**
 * @typedef {object} VersionDiff
 * @property {number} from
 * @property {number} to
 * @property {{field: string, unified: string}[]} fields
 */

/**
 * The draft (working copy) of a published article.
 * @typedef {object} WorkingCopy
 * @property {number} article_id
 * @property {string} title
 * @property {string} summary
 * @property {string} body
 * @property {string} category
 * @property {string[]} tags
 * @property {string[]} audience
 * @property {string|null} [review_due]
 * @property {Status} status `draft` or `in_review`
 * @property {string} author
 * @property {string|null} [note] the last reviewer's note
 * @property {string} updated_at
 */

// ---- workflow -------------------------------------------------------------

/**
 * @typedef {object} Task
 * @property {number} id
 * @property {number} article_id
 * @property {'review'|'update'} kind
 * @property {'open'|'done'} status
 * @property {string|null} [assignee_role]
 * @property {string|null} [assignee_user]
 * @property {string} created_by
 * @property {string} created_at
 * @property {string|null} [due_at]
 * @property {string|null} [closed_at]
 * @property {string|null} [closed_by]
 * @property {string|null} [note]
 */

/**
 * "Send to staff for update".
 * @typedef {object} UpdateRequest
 * @property {string[]} [users]
 * @property {string[]} [roles]
 * @property {string|null} [note]
 * @property {number|null} [due_days] 1–365, default 14
 */

/**
 * @typedef {object} Notification
 * @property {number} id
 * @property {string} recipient
 * @property {string} kind `review_requested`, `approved`, `rejected`, `escalation`, `update_needed`
 * @property {string} message
 * @property {number|null} [article_id]
 * @property {number|null} [task_id]
 * @property {string} created_at
 * @property {string|null} [read_at]
 */

/**
 * @typedef {object} Inbox
 * @property {number} unread unread notifications in all
 * @property {Notification[]} items newest first
 */

// ---- rules ----------------------------------------------------------------

/**
 * @typedef {object} EscalationStep
 * @property {number} after_hours hours past the due time
 * @property {string|null} [to_role]
 * @property {string|null} [to_user]
 */

/**
 * @typedef {object} RuleSpec
 * @property {string[]} [mandatory_fields] of `summary`, `body`, `tags`, `audience`, `review_due`
 * @property {Record<string, number>} [min_lengths] by `title`, `summary`, `body`
 * @property {number|null} [review_interval_days]
 * @property {string|null} [approver_role]
 * @property {EscalationStep[]} [escalation]
 */

/**
 * @typedef {object} CategoryRule
 * @property {string} category `*` is the global default
 * @property {RuleSpec} spec
 * @property {number} version
 * @property {string} updated_by
 * @property {string} updated_at
 */

// ---- usage ----------------------------------------------------------------

/**
 * @typedef {{kind: 'click', article_id: number, position: number, search_id?: string|null}
 *   | {kind: 'dwell', article_id: number, dwell_ms: number}} ClientEvent
 */

/**
 * @typedef {object} RatingSummary
 * @property {number} article_id
 * @property {number|null} [average]
 * @property {number} ratings
 * @property {number} helpful
 * @property {number} not_helpful
 * @property {number|null} [your_stars]
 * @property {boolean|null} [your_helpful]
 */

/**
 * @typedef {object} Feedback
 * @property {number} id
 * @property {number} article_id
 * @property {string} username
 * @property {string} comment
 * @property {number} task_id the update task opened for the owner
 * @property {string} created_at
 */

/**
 * @typedef {object} Privacy
 * @property {boolean} keep_search_history
 */

/**
 * @typedef {object} History
 * @property {string} username
 * @property {boolean} keep_search_history
 * @property {{article_id: number, at: string, dwell_ms?: number|null}[]} views
 * @property {{id: string, at: string, query: string, result_count: number}[]} searches
 */

// ---- analytics and assignments --------------------------------------------

/**
 * @typedef {object} ReportParams
 * @property {string} [sort] id, slug, title, category, status, last_reviewed, review_due, uses, unique_readers, avg_rating, ratings, helpful_pct, feedback
 * @property {'asc'|'desc'} [order]
 * @property {string} [category]
 * @property {Status} [status]
 * @property {string} [from] date or RFC 3339, inclusive
 * @property {string} [to] date or RFC 3339, exclusive
 * @property {number} [limit]
 * @property {number} [offset]
 */

/**
 * @typedef {object} ArticleUsage
 * @property {number} id
 * @property {string} slug
 * @property {string} title
 * @property {string} category
 * @property {Status} status
 * @property {string|null} [last_reviewed]
 * @property {string|null} [review_due]
 * @property {number} uses
 * @property {number} unique_readers
 * @property {number|null} [avg_rating]
 * @property {number} ratings
 * @property {number|null} [helpful_pct]
 * @property {number} feedback
 */

/**
 * @typedef {object} UsageReport
 * @property {ArticleUsage[]} rows
 * @property {number} total
 */

/**
 * @typedef {object} QueryRow
 * @property {string} query
 * @property {number} searches
 * @property {number} zero_results
 * @property {number} avg_results
 * @property {number} clicks
 * @property {number} clicked_searches
 * @property {number} ctr
 * @property {string} last_at
 * @property {{id: number, slug: string, title: string, clicks: number}[]} clicked_articles
 */

/**
 * @typedef {object} QueryReport
 * @property {{searches: number, zero_results: number, clicks: number, clicked_searches: number, ctr: number}} overall
 * @property {QueryRow[]} top
 * @property {QueryRow[]} no_results
 * @property {QueryRow[]} poor_results
 */

/**
 * @typedef {object} TimeSeriesParams
 * @property {'views'|'searches'|'clicks'} metric
 * @property {'day'|'hour'} [bucket]
 * @property {string} [from]
 * @property {string} [to]
 */

/**
 * @typedef {object} TimeSeries
 * @property {'views'|'searches'|'clicks'} metric
 * @property {'day'|'hour'} bucket
 * @property {string} from
 * @property {string} to
 * @property {{at: string, count: number}[]} points
 */

/**
 * @typedef {object} AssignRequest
 * @property {string[]} [users]
 * @property {string[]} [roles]
 * @property {'read'|'review'} [kind]
 */

/**
 * @typedef {object} Assignment
 * @property {number} id
 * @property {number} article_id
 * @property {string} username
 * @property {'read'|'review'} kind
 * @property {string|null} [via_role]
 * @property {string} assigned_by
 * @property {string} assigned_at
 * @property {string|null} [done_at]
 */

/**
 * @typedef {object} AssignOutcome
 * @property {Assignment[]} assigned
 * @property {string[]} skipped people who may not read the article
 */

// ---- knowledge-development prompts ----------------------------------------

/**
 * @typedef {object} GapQuery
 * @property {string} query normalised
 * @property {number} searches
 * @property {number} zero_results
 * @property {number} requests times people asked for an article on it
 */

/**
 * A suggested new article: unanswered searches, grouped by meaning.
 * @typedef {object} Gap
 * @property {string} suggested_title the most asked query of the group
 * @property {string|null} [category] the category of the nearest readable articles
 * @property {number} searches
 * @property {number} zero_results
 * @property {number} requests explicit "ask for an article" requests
 * @property {GapQuery[]} queries most asked first
 */

/** @typedef {'review_overdue'|'low_rating'|'unhelpful'|'feedback'|'falling_use'} UpdateReason */

/**
 * An article that needs an update, and why.
 * @typedef {object} UpdatePrompt
 * @property {number} id
 * @property {string} slug
 * @property {string} title
 * @property {string} category
 * @property {string} owner
 * @property {number} impact
 * @property {number} uses
 * @property {number} previous_uses
 * @property {UpdateReason[]} reasons
 */

/**
 * An explicit request for an article (`POST /v1/prompts/requests`).
 * @typedef {object} ArticleRequest
 * @property {string} query the normalised words asked for
 * @property {number} requests how many people asked for these words
 */

// ---- operations -----------------------------------------------------------

/**
 * @typedef {object} CategoryWebhook
 * @property {number} id
 * @property {string} category
 * @property {string} url
 * @property {string|null} [secret] returned once, at creation
 * @property {string} created_by
 * @property {string} created_at
 */

/**
 * @typedef {object} AuditEntry
 * @property {number} id
 * @property {string} at
 * @property {string} actor
 * @property {string} action
 * @property {string} target
 * @property {Record<string, unknown>} details
 * @property {string} prev_hash
 * @property {string} hash
 */

/**
 * @typedef {object} AuditParams
 * @property {number} [after_id]
 * @property {number} [limit]
 * @property {string} [actor]
 * @property {string} [action]
 * @property {string} [target]
 * @property {string} [since] inclusive
 * @property {string} [until] exclusive
 */

/**
 * `GET /readyz`.
 * @typedef {object} Readiness
 * @property {string} status `ready` or not
 * @property {string} store
 * @property {number} index_documents
 * @property {number} index_generation
 * @property {number} checkpoint
 * @property {number} lag
 * @property {string|null} [last_error]
 * @property {Record<string, unknown>} semantic
 */

export {};
