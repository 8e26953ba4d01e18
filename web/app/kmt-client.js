// @ts-check
/**
 * @file KMT's JavaScript client library: one class wrapping the REST API
 * (`/v1`), for KMT's own pages and for other programs. An ES module with
 * no dependencies; served by `kmt` at `/assets/kmt-client.js`.
 *
 * Two ways to authenticate:
 * - browsers sign in with a password (`signIn`): the server sets an
 *   HttpOnly session cookie and returns a CSRF token, which this client
 *   keeps in memory and sends as `X-CSRF-Token` on every write (after a
 *   page load, `session()` recovers it);
 * - programs pass an API token (`{token}`), sent as `Authorization: Bearer`.
 *
 * Every failure is a {@link KmtError}: an HTTP error carries the server's
 * problem document (status, title, detail, field, errors); a network
 * failure, a timeout or an abort say so in `kind`. Reads that fail on the
 * network or with 502/503/504 are tried again (`retries`, default 1);
 * writes never are, since the first attempt may have been applied.
 *
 * Types: see `kmt-types.js` (JSDoc typedefs of every request and response).
 */

/** @typedef {import('./kmt-types.js').Problem} Problem */
/** @typedef {import('./kmt-types.js').FieldFault} FieldFault */
/** @typedef {import('./kmt-types.js').SessionInfo} SessionInfo */
/** @typedef {import('./kmt-types.js').Me} Me */
/** @typedef {import('./kmt-types.js').Level} Level */
/** @typedef {import('./kmt-types.js').Preferences} Preferences */
/** @typedef {import('./kmt-types.js').PreferencesView} PreferencesView */
/** @typedef {import('./kmt-types.js').User} User */
/** @typedef {import('./kmt-types.js').NewUser} NewUser */
/** @typedef {import('./kmt-types.js').Contact} Contact */
/** @typedef {import('./kmt-types.js').RoleInfo} RoleInfo */
/** @typedef {import('./kmt-types.js').NewGroup} NewGroup */
/** @typedef {import('./kmt-types.js').IssuedToken} IssuedToken */
/** @typedef {import('./kmt-types.js').SearchParams} SearchParams */
/** @typedef {import('./kmt-types.js').SearchFilter} SearchFilter */
/** @typedef {import('./kmt-types.js').SearchResults} SearchResults */
/** @typedef {import('./kmt-types.js').Hit} Hit */
/** @typedef {import('./kmt-types.js').Suggestion} Suggestion */
/** @typedef {import('./kmt-types.js').Article} Article */
/** @typedef {import('./kmt-types.js').ArticleView} ArticleView */
/** @typedef {import('./kmt-types.js').NewArticle} NewArticle */
/** @typedef {import('./kmt-types.js').ArticlePatch} ArticlePatch */
/** @typedef {import('./kmt-types.js').ArticleVersion} ArticleVersion */
/** @typedef {import('./kmt-types.js').VersionDiff} VersionDiff */
/** @typedef {import('./kmt-types.js').WorkingCopy} WorkingCopy */
/** @typedef {import('./kmt-types.js').Task} Task */
/** @typedef {import('./kmt-types.js').UpdateRequest} UpdateRequest */
/** @typedef {import('./kmt-types.js').Inbox} Inbox */
/** @typedef {import('./kmt-types.js').RuleSpec} RuleSpec */
/** @typedef {import('./kmt-types.js').CategoryRule} CategoryRule */
/** @typedef {import('./kmt-types.js').ClientEvent} ClientEvent */
/** @typedef {import('./kmt-types.js').RatingSummary} RatingSummary */
/** @typedef {import('./kmt-types.js').Feedback} Feedback */
/** @typedef {import('./kmt-types.js').Privacy} Privacy */
/** @typedef {import('./kmt-types.js').History} History */
/** @typedef {import('./kmt-types.js').ReportParams} ReportParams */
/** @typedef {import('./kmt-types.js').UsageReport} UsageReport */
/** @typedef {import('./kmt-types.js').QueryReport} QueryReport */
/** @typedef {import('./kmt-types.js').TimeSeriesParams} TimeSeriesParams */
/** @typedef {import('./kmt-types.js').TimeSeries} TimeSeries */
/** @typedef {import('./kmt-types.js').AssignRequest} AssignRequest */
/** @typedef {import('./kmt-types.js').Assignment} Assignment */
/** @typedef {import('./kmt-types.js').AssignOutcome} AssignOutcome */
/** @typedef {import('./kmt-types.js').Gap} Gap */
/** @typedef {import('./kmt-types.js').UpdatePrompt} UpdatePrompt */
/** @typedef {import('./kmt-types.js').CategoryWebhook} CategoryWebhook */
/** @typedef {import('./kmt-types.js').AuditEntry} AuditEntry */
/** @typedef {import('./kmt-types.js').AuditParams} AuditParams */
/** @typedef {import('./kmt-types.js').Readiness} Readiness */
/** @typedef {import('./kmt-types.js').ArticleRequest} ArticleRequest */

/**
 * What went wrong: `http` (the server answered with an error status),
 * `network` (no answer), `timeout` (no answer in time), `aborted` (the
 * caller's signal), `parse` (a success answer that is not the JSON it
 * claims to be).
 * @typedef {'http'|'network'|'timeout'|'aborted'|'parse'} KmtErrorKind
 */

/**
 * @typedef {object} KmtErrorInit
 * @property {KmtErrorKind} kind
 * @property {number} [status] HTTP status; 0 when there was no answer
 * @property {string} [title]
 * @property {string} [detail]
 * @property {string} [field]
 * @property {FieldFault[]} [errors]
 * @property {string} [type] the problem type URI
 * @property {string} [method]
 * @property {string} [url]
 * @property {number} [retryAfter] seconds, from `Retry-After` (429)
 * @property {string} [requestId] the server's `X-Request-Id`
 * @property {unknown} [cause]
 */

/** An API call that failed; see {@link KmtErrorKind}. */
export class KmtError extends Error {
  /** @param {KmtErrorInit} init */
  constructor(init) {
    const what = init.detail || init.title || 'request failed';
    super(init.status ? `${init.status} ${what}` : what, { cause: init.cause });
    this.name = 'KmtError';
    /** @type {KmtErrorKind} */
    this.kind = init.kind;
    this.status = init.status ?? 0;
    this.title = init.title ?? '';
    this.detail = init.detail ?? '';
    /** @type {string|undefined} */
    this.field = init.field;
    /** @type {FieldFault[]} */
    this.errors = init.errors ?? [];
    /** @type {string|undefined} */
    this.type = init.type;
    this.method = init.method ?? '';
    this.url = init.url ?? '';
    /** @type {number|undefined} */
    this.retryAfter = init.retryAfter;
    /** @type {string|undefined} */
    this.requestId = init.requestId;
  }

  /**
   * Messages by field, for showing next to form fields: the rule faults
   * (`errors`) and the single offending `field`, if any.
   * @returns {Record<string, string[]>}
   */
  fieldErrors() {
    /** @type {Record<string, string[]>} */
    const out = {};
    for (const e of this.errors) (out[e.field] ??= []).push(e.message);
    if (this.field && !out[this.field]) out[this.field] = [this.detail];
    return out;
  }
}

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] e.g. `https://kmt.example` (default: this page's origin)
 * @property {string} [token] API token: bearer mode, for programs
 * @property {string} [csrfToken] a session's CSRF token already known
 * @property {typeof fetch} [fetch] the fetch to use (tests inject one)
 * @property {number} [timeoutMs] per request, default 30000 (0: none)
 * @property {number} [retries] extra attempts of reads that failed on the network or with 502/503/504, default 1
 * @property {number} [retryDelayMs] wait before a retry, default 250
 * @property {RequestCredentials} [credentials] default `same-origin` (the session cookie)
 */

/**
 * @typedef {object} RequestOptions
 * @property {Record<string, unknown>} [query] `undefined`/`null` values are left out; arrays repeat the key
 * @property {unknown} [body] sent as JSON
 * @property {AbortSignal} [signal] the caller's abort signal
 * @property {number} [timeoutMs] overrides the client's
 * @property {Record<string, string>} [headers]
 */

/**
 * @typedef {object} ApiResponse
 * @property {any} data the parsed JSON (or text; `undefined` for 204)
 * @property {Response} response
 */

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRY_STATUSES = new Set([502, 503, 504]);

/** A path segment: ids, slugs, usernames and categories are escaped. */
const seg = (/** @type {string|number} */ v) => encodeURIComponent(String(v));

/**
 * Builds a query string: keys in the order given, arrays repeated
 * (`filter=a&filter=b`), `undefined`/`null` left out, booleans as
 * `true`/`false`.
 * @param {Record<string, unknown>} [query]
 * @returns {string} empty, or starting with `?`
 */
export function queryString(query) {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one === undefined || one === null) continue;
      p.append(k, String(one));
    }
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/**
 * The `filter` values of a search: strings as given, or `{field: values}`
 * spelled `field:value`.
 * @param {SearchFilter|undefined} filter
 * @returns {string[]|undefined}
 */
export function filterParams(filter) {
  if (!filter) return undefined;
  if (Array.isArray(filter)) return filter;
  return Object.entries(filter).flatMap(([field, v]) =>
    (Array.isArray(v) ? v : [v]).map((one) => `${field}:${one}`),
  );
}

/** The client; one per page or program. */
export class KmtClient {
  /** @param {ClientOptions} [opts] */
  constructor(opts = {}) {
    this.baseUrl = (opts.baseUrl ?? '').replace(/\/+$/, '');
    /** @type {string|undefined} */
    this.token = opts.token;
    /** @type {string|undefined} */
    this.csrfToken = opts.csrfToken;
    // Bound, so a stubbed or the global fetch is called without `this`.
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('no fetch: pass {fetch} to KmtClient');
    /** @type {typeof fetch} */
    this.fetch = (input, init) => f(input, init);
    this.timeoutMs = opts.timeoutMs ?? 30000;
    this.retries = opts.retries ?? 1;
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    /** @type {RequestCredentials} */
    this.credentials = opts.credentials ?? 'same-origin';
  }

  /** Bearer mode: send this API token (`undefined` to stop). @param {string|undefined} token */
  setToken(token) {
    this.token = token || undefined;
  }

  /**
   * Sends one request and decodes the answer; throws {@link KmtError}.
   * @param {string} method
   * @param {string} path starting with `/`
   * @param {RequestOptions} [opts]
   * @returns {Promise<ApiResponse>}
   */
  async send(method, path, opts = {}) {
    method = method.toUpperCase();
    const url = this.baseUrl + path + queryString(opts.query);
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json, application/problem+json', ...opts.headers };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const safe = SAFE_METHODS.has(method);
    if (!safe && this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    /** @type {string|undefined} */
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const attempts = safe ? 1 + Math.max(0, this.retries) : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.#attempt(method, url, headers, body, opts);
        if (response.ok) return { data: await decode(response, method, url), response };
        const err = await httpError(response, method, url);
        if (attempt < attempts && RETRY_STATUSES.has(response.status)) {
          await sleep(this.retryDelayMs);
          continue;
        }
        throw err;
      } catch (e) {
        if (attempt < attempts && e instanceof KmtError && e.kind === 'network') {
          await sleep(this.retryDelayMs);
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * One fetch with the timeout and the caller's signal.
   * @param {string} method
   * @param {string} url
   * @param {Record<string, string>} headers
   * @param {string|undefined} body
   * @param {RequestOptions} opts
   * @returns {Promise<Response>}
   */
  async #attempt(method, url, headers, body, opts) {
    const ctl = new AbortController();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = timeoutMs > 0
      ? setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs)
      : undefined;
    const onAbort = () => ctl.abort();
    if (opts.signal?.aborted) ctl.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.fetch(url, {
        method,
        headers,
        body,
        credentials: this.credentials,
        signal: ctl.signal,
      });
    } catch (cause) {
      if (timedOut) {
        throw new KmtError({ kind: 'timeout', method, url, cause,
          detail: `no answer from ${method} ${url} within ${timeoutMs} ms` });
      }
      if (ctl.signal.aborted) {
        throw new KmtError({ kind: 'aborted', method, url, cause, detail: `${method} ${url} was aborted` });
      }
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new KmtError({ kind: 'network', method, url, cause,
        detail: `network error: could not reach the server for ${method} ${url} (${why})` });
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** @param {string} path @param {RequestOptions} [opts] */
  async get(path, opts) { return (await this.send('GET', path, opts)).data; }
  /** @param {string} path @param {unknown} [body] @param {RequestOptions} [opts] */
  async post(path, body, opts) { return (await this.send('POST', path, { ...opts, body })).data; }
  /** @param {string} path @param {unknown} [body] @param {RequestOptions} [opts] */
  async put(path, body, opts) { return (await this.send('PUT', path, { ...opts, body })).data; }
  /** @param {string} path @param {RequestOptions} [opts] */
  async delete(path, opts) { return (await this.send('DELETE', path, opts)).data; }

  // ---- session and the caller --------------------------------------------

  /**
   * Signs in with a password: the server sets the session cookie; the CSRF
   * token is kept for writes.
   * @param {string} username @param {string} password
   * @returns {Promise<SessionInfo>}
   */
  async signIn(username, password) {
    /** @type {SessionInfo} */
    const s = await this.post('/v1/session', { username, password });
    this.csrfToken = s.csrf_token;
    return s;
  }

  /** Signs out (ends the session, clears the cookie and the CSRF token). @returns {Promise<void>} */
  async signOut() {
    try {
      await this.delete('/v1/session');
    } finally {
      this.csrfToken = undefined;
    }
  }

  /**
   * The current cookie session, or `null` when not signed in; keeps its
   * CSRF token (call it after a page load).
   * @returns {Promise<SessionInfo|null>}
   */
  async session() {
    try {
      /** @type {SessionInfo} */
      const s = await this.get('/v1/session');
      this.csrfToken = s.csrf_token;
      return s;
    } catch (e) {
      if (e instanceof KmtError && e.status === 401) {
        this.csrfToken = undefined;
        return null;
      }
      throw e;
    }
  }

  /** @returns {Promise<Me>} */
  me() { return this.get('/v1/me'); }
  /** @returns {Promise<PreferencesView>} */
  preferences() { return this.get('/v1/me/preferences'); }
  /** @param {Preferences} prefs @returns {Promise<PreferencesView>} */
  setPreferences(prefs) { return this.put('/v1/me/preferences', prefs); }
  /** @returns {Promise<Privacy>} */
  privacy() { return this.get('/v1/me/privacy'); }
  /** @param {Privacy} p @returns {Promise<Privacy>} */
  setPrivacy(p) { return this.put('/v1/me/privacy', p); }
  /** @param {{limit?: number}} [o] @returns {Promise<History>} */
  myHistory(o = {}) { return this.get('/v1/me/history', { query: { limit: o.limit } }); }

  // ---- search ------------------------------------------------------------

  /**
   * Searches articles the caller may read. The result's `search_id` (from
   * `X-Search-Id`) identifies the search in click events.
   * @param {SearchParams} [params]
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<SearchResults>}
   */
  async search(params = {}, opts = {}) {
    const { data, response } = await this.send('GET', '/v1/search', {
      query: searchQuery(params),
      signal: opts.signal,
    });
    const id = response.headers.get('x-search-id');
    return id ? { ...data, search_id: id } : data;
  }

  /**
   * As-you-type suggestions.
   * @param {string} q @param {{limit?: number, signal?: AbortSignal}} [o]
   * @returns {Promise<Suggestion[]>}
   */
  async suggest(q, o = {}) {
    const r = await this.get('/v1/suggest', { query: { q, limit: o.limit }, signal: o.signal });
    return r.suggestions;
  }

  // ---- articles ----------------------------------------------------------

  /** Newest first; takes the search parameters. @param {SearchParams} [params] @returns {Promise<SearchResults>} */
  listArticles(params = {}) { return this.get('/v1/articles', { query: searchQuery(params) }); }
  /**
   * An article as the caller may see it, at a level (default: the
   * reader's preference).
   * @param {number|string} id id or slug @param {{level?: Level}} [o]
   * @returns {Promise<ArticleView>}
   */
  article(id, o = {}) { return this.get(`/v1/articles/${seg(id)}`, { query: { level: o.level } }); }
  /** @param {NewArticle} input @returns {Promise<Article>} */
  createArticle(input) { return this.post('/v1/articles', input); }
  /** @param {number|string} id @param {ArticlePatch} patch @returns {Promise<Article>} */
  updateArticle(id, patch) { return this.put(`/v1/articles/${seg(id)}`, patch); }
  /** @param {number|string} id @returns {Promise<void>} */
  deleteArticle(id) { return this.delete(`/v1/articles/${seg(id)}`); }
  /** @param {number|string} id @returns {Promise<ArticleVersion[]>} */
  versions(id) { return this.get(`/v1/articles/${seg(id)}/versions`); }
  /** @param {number|string} id @param {number} from @param {number} to @returns {Promise<VersionDiff>} */
  diff(id, from, to) { return this.get(`/v1/articles/${seg(id)}/diff`, { query: { from, to } }); }
  /** @param {number|string} id @param {number} version @returns {Promise<Article>} */
  revert(id, version) { return this.post(`/v1/articles/${seg(id)}/revert`, { version }); }
  /** @param {number|string} id @returns {Promise<Article>} */
  retire(id) { return this.post(`/v1/articles/${seg(id)}/retire`); }
  /** @param {number|string} id @param {{limit?: number}} [o] @returns {Promise<Hit[]>} */
  async related(id, o = {}) {
    return (await this.get(`/v1/articles/${seg(id)}/related`, { query: { limit: o.limit } })).related;
  }
  /** "Send to staff for update". @param {number|string} id @param {UpdateRequest} req @returns {Promise<Task[]>} */
  requestUpdate(id, req) { return this.post(`/v1/articles/${seg(id)}/request-update`, req); }

  // ---- workflow ----------------------------------------------------------

  /** @param {number|string} id @returns {Promise<WorkingCopy>} */
  draft(id) { return this.get(`/v1/articles/${seg(id)}/draft`); }
  /** @param {number|string} id @param {ArticlePatch} patch @returns {Promise<WorkingCopy>} */
  saveDraft(id, patch) { return this.put(`/v1/articles/${seg(id)}/draft`, patch); }
  /** Submit for review (a 422's `errors` lists every rule broken). @param {number|string} id @returns {Promise<Task>} */
  submit(id) { return this.post(`/v1/articles/${seg(id)}/submit`); }
  /** @param {number|string} id @param {string} [note] @returns {Promise<Article>} */
  approve(id, note) { return this.post(`/v1/articles/${seg(id)}/approve`, noteBody(note)); }
  /** @param {number|string} id @param {string} note @returns {Promise<Article>} */
  reject(id, note) { return this.post(`/v1/articles/${seg(id)}/reject`, { note }); }
  /** @param {number} taskId @param {string} [note] @returns {Promise<Article>} */
  approveTask(taskId, note) { return this.post(`/v1/tasks/${seg(taskId)}/approve`, noteBody(note)); }
  /** @param {number} taskId @param {string} note @returns {Promise<Article>} */
  rejectTask(taskId, note) { return this.post(`/v1/tasks/${seg(taskId)}/reject`, { note }); }
  /** @param {{includeDone?: boolean}} [o] @returns {Promise<Task[]>} */
  tasks(o = {}) { return this.get('/v1/tasks', { query: { include_done: o.includeDone || undefined } }); }

  // ---- notifications -----------------------------------------------------

  /** @param {{unread?: boolean, limit?: number}} [o] @returns {Promise<Inbox>} */
  notifications(o = {}) {
    return this.get('/v1/notifications', { query: { unread: o.unread || undefined, limit: o.limit } });
  }
  /** @returns {Promise<number>} */
  async unreadCount() { return (await this.notifications({ unread: true, limit: 1 })).unread; }
  /** Marks these notifications read (all when `ids` is absent). @param {number[]} [ids] @returns {Promise<number>} */
  async markRead(ids) {
    return (await this.post('/v1/notifications/read', ids ? { ids } : {})).marked;
  }

  // ---- rules -------------------------------------------------------------

  /** @returns {Promise<CategoryRule[]>} */
  rules() { return this.get('/v1/rules'); }
  /** The rules in force for a category (its own, else `*`). @param {string} category @returns {Promise<RuleSpec>} */
  rule(category) { return this.get(`/v1/rules/${seg(category)}`); }
  /** @param {string} category `*` for the global default @param {RuleSpec} spec @returns {Promise<CategoryRule>} */
  saveRule(category, spec) { return this.put(`/v1/rules/${seg(category)}`, spec); }
  /** @param {string} category @returns {Promise<CategoryRule[]>} */
  ruleHistory(category) { return this.get(`/v1/rules/${seg(category)}/history`); }

  // ---- users, roles and groups -------------------------------------------

  /** @returns {Promise<RoleInfo[]>} */
  roles() { return this.get('/v1/roles'); }
  /** @param {NewGroup} g @returns {Promise<RoleInfo>} */
  createGroup(g) { return this.post('/v1/roles', g); }
  /** @returns {Promise<User[]>} */
  users() { return this.get('/v1/users'); }
  /** @param {NewUser} u @returns {Promise<User>} */
  createUser(u) { return this.post('/v1/users', u); }
  /** @param {string} username @param {string[]} roles the complete list @returns {Promise<User>} */
  setRoles(username, roles) { return this.put(`/v1/users/${seg(username)}/roles`, { roles }); }
  /** @param {string} username @param {Contact} c @returns {Promise<User>} */
  setContact(username, c) { return this.put(`/v1/users/${seg(username)}/contact`, c); }
  /** @param {string} username @param {string} name @returns {Promise<IssuedToken>} */
  createToken(username, name) { return this.post(`/v1/users/${seg(username)}/tokens`, { name }); }
  /**
   * @param {string} username @param {string} password
   * @param {string} [currentPassword] needed to change one's own
   * @returns {Promise<void>}
   */
  setPassword(username, password, currentPassword) {
    return this.put(`/v1/users/${seg(username)}/password`,
      currentPassword === undefined ? { password } : { password, current_password: currentPassword });
  }
  /** @param {string} username @param {{limit?: number}} [o] @returns {Promise<History>} */
  userHistory(username, o = {}) {
    return this.get(`/v1/users/${seg(username)}/history`, { query: { limit: o.limit } });
  }

  // ---- usage -------------------------------------------------------------

  /** Reports clicks and dwell times (at most 100). @param {ClientEvent[]} events @returns {Promise<number>} accepted */
  async events(events) { return (await this.post('/v1/events', { events })).accepted; }
  /** @param {number|string} id @returns {Promise<RatingSummary>} */
  rating(id) { return this.get(`/v1/articles/${seg(id)}/rating`); }
  /** @param {number|string} id @param {number} stars 1..5 @returns {Promise<RatingSummary>} */
  rate(id, stars) { return this.put(`/v1/articles/${seg(id)}/rating`, { stars }); }
  /** @param {number|string} id @param {boolean} helpful @returns {Promise<RatingSummary>} */
  helpful(id, helpful) { return this.post(`/v1/articles/${seg(id)}/helpful`, { helpful }); }
  /** Opens an update task for the owner. @param {number|string} id @param {string} comment @returns {Promise<Feedback>} */
  feedback(id, comment) { return this.post(`/v1/articles/${seg(id)}/feedback`, { comment }); }

  // ---- analytics and assignments -----------------------------------------

  /** The article usage report. @param {ReportParams} [p] @returns {Promise<UsageReport>} */
  articleReport(p = {}) { return this.get('/v1/analytics/articles', { query: { ...p } }); }
  /** @param {{from?: string, to?: string, limit?: number}} [p] @returns {Promise<QueryReport>} */
  queryReport(p = {}) { return this.get('/v1/analytics/queries', { query: { ...p } }); }
  /** @param {TimeSeriesParams} p @returns {Promise<TimeSeries>} */
  timeseries(p) { return this.get('/v1/analytics/timeseries', { query: { ...p } }); }
  /** @param {number|string} id @param {AssignRequest} req @returns {Promise<AssignOutcome>} */
  assign(id, req) { return this.post(`/v1/articles/${seg(id)}/assignments`, req); }
  /** @param {number|string} id @returns {Promise<Assignment[]>} */
  assignments(id) { return this.get(`/v1/articles/${seg(id)}/assignments`); }
  /** @param {{includeDone?: boolean}} [o] @returns {Promise<Assignment[]>} */
  myAssignments(o = {}) {
    return this.get('/v1/assignments/mine', { query: { include_done: o.includeDone || undefined } });
  }

  // ---- knowledge-development prompts -------------------------------------

  /**
   * Content gaps: unanswered searches grouped by meaning, most asked first
   * (writers).
   * @param {{days?: number, limit?: number}} [p] window 1..=365 days (default 30), 1..=100 gaps (default 20)
   * @returns {Promise<Gap[]>}
   */
  gaps(p = {}) { return this.get('/v1/prompts/gaps', { query: { days: p.days, limit: p.limit } }); }
  /**
   * Live articles that need an update (stale, rated low, unhelpful,
   * feedback, falling use), by impact.
   * @param {{days?: number, limit?: number}} [p] window 1..=365 days (default 30), 1..=500 rows (default 50)
   * @returns {Promise<UpdatePrompt[]>}
   */
  updatePrompts(p = {}) { return this.get('/v1/prompts/updates', { query: { days: p.days, limit: p.limit } }); }
  // ---- knowledge-development prompts --------------------------------------

  /**
   * "Ask for an article on this": records that the caller wants an article
   * on what they searched for; it counts in the writers' content gaps.
   * @param {string} query @returns {Promise<ArticleRequest>}
   */
  requestArticle(query) { return this.post('/v1/prompts/requests', { query }); }

  // ---- operations --------------------------------------------------------

  /** @param {string} category @returns {Promise<CategoryWebhook[]>} */
  categoryWebhooks(category) { return this.get(`/v1/categories/${seg(category)}/webhooks`); }
  /** The secret is in the answer, once. @param {string} category @param {string} url @returns {Promise<CategoryWebhook>} */
  createCategoryWebhook(category, url) { return this.post(`/v1/categories/${seg(category)}/webhooks`, { url }); }
  /** @param {string} category @param {number} id @returns {Promise<void>} */
  deleteCategoryWebhook(category, id) { return this.delete(`/v1/categories/${seg(category)}/webhooks/${seg(id)}`); }
  /** @param {AuditParams} [p] @returns {Promise<AuditEntry[]>} */
  audit(p = {}) { return this.get('/v1/audit', { query: { ...p } }); }
  /** @returns {Promise<{seq: number}>} */
  reindex() { return this.post('/v1/admin/reindex'); }
  /** `GET /readyz` (a 503 when not ready throws). @returns {Promise<Readiness>} */
  readiness() { return this.get('/readyz'); }
  /** The OpenAPI description. @returns {Promise<Record<string, unknown>>} */
  openapi() { return this.get('/v1/openapi.json'); }
}

/**
 * The query of a search: the filter spelled out, facets joined by commas.
 * @param {SearchParams} p
 * @returns {Record<string, unknown>}
 */
function searchQuery(p) {
  return {
    q: p.q,
    filter: filterParams(p.filter),
    facets: Array.isArray(p.facets) ? (p.facets.length ? p.facets.join(',') : undefined) : p.facets,
    sort: p.sort,
    limit: p.limit,
    offset: p.offset,
    match: p.match,
    mode: p.mode,
    fusion: p.fusion,
    explain: p.explain || undefined,
  };
}

/** An approval's optional note: no body at all without one. @param {string|undefined} note */
const noteBody = (note) => (note === undefined ? undefined : { note });

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The body of a success answer: JSON when it says so, else text;
 * nothing for 204.
 * @param {Response} r @param {string} method @param {string} url
 */
async function decode(r, method, url) {
  if (r.status === 204 || method === 'HEAD') return undefined;
  const text = await r.text();
  if (!isJson(r)) return text;
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new KmtError({ kind: 'parse', status: r.status, method, url, cause,
      detail: `the server's answer to ${method} ${url} is not valid JSON` });
  }
}

/** @param {Response} r */
const isJson = (r) => /\bjson\b/i.test(r.headers.get('content-type') ?? '');

/**
 * A KmtError from an error answer: the problem document's fields when the
 * body is one, else the status and the first part of the body's text.
 * @param {Response} r @param {string} method @param {string} url
 * @returns {Promise<KmtError>}
 */
async function httpError(r, method, url) {
  const base = {
    kind: /** @type {const} */ ('http'),
    status: r.status,
    method,
    url,
    requestId: r.headers.get('x-request-id') ?? undefined,
    retryAfter: retryAfter(r.headers.get('retry-after')),
  };
  let text = '';
  try {
    text = await r.text();
  } catch {
    // The body could not be read (connection dropped): the status says enough.
  }
  if (isJson(r)) {
    try {
      /** @type {Partial<Problem>} */
      const p = JSON.parse(text);
      if (p && typeof p === 'object') {
        return new KmtError({
          ...base,
          title: p.title ?? r.statusText,
          detail: p.detail ?? '',
          field: p.field ?? undefined,
          errors: Array.isArray(p.errors) ? p.errors : [],
          type: p.type,
        });
      }
    } catch {
      // Not JSON after all: treated as text below.
    }
  }
  const snippet = text.trim().replace(/\s+/g, ' ').slice(0, 300);
  return new KmtError({
    ...base,
    title: r.statusText || `HTTP ${r.status}`,
    detail: snippet || `${method} ${url} failed with HTTP ${r.status}`,
  });
}

/** Seconds from a `Retry-After` header (seconds or an HTTP date). @param {string|null} v */
function retryAfter(v) {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, n);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}
