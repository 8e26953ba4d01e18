// A stubbed fetch for the client's unit tests: records every call and
// answers from a queue of canned responses (or throws what it is given).

/**
 * @typedef {object} Call
 * @property {string} url
 * @property {string} method
 * @property {Record<string, string>} headers
 * @property {string|undefined} body
 * @property {RequestCredentials|undefined} credentials
 * @property {AbortSignal|undefined} signal
 */

/** A JSON answer. */
export function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A problem+json answer (RFC 9457), as the server writes them. */
export function problem(status, title, detail, extra = {}, headers = {}) {
  const body = { type: `https://kmt.dev/problems/${title.toLowerCase().replace(/ /g, '-')}`, title, status, detail, ...extra };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

/**
 * A fetch that answers with `answers` in turn: a Response, an Error to
 * throw, or a function of the call returning either (or a promise).
 * @param {Array<Response|Error|((c: Call) => any)>} answers
 */
export function stubFetch(...answers) {
  /** @type {Call[]} */
  const calls = [];
  /** @type {typeof fetch & {calls: Call[]}} */
  const f = Object.assign(
    async (/** @type {any} */ url, /** @type {RequestInit} */ init = {}) => {
      const call = {
        url: String(url),
        method: init.method ?? 'GET',
        headers: /** @type {Record<string, string>} */ ({ ...init.headers }),
        body: /** @type {string|undefined} */ (init.body),
        credentials: init.credentials,
        signal: init.signal ?? undefined,
      };
      calls.push(call);
      if (answers.length === 0) throw new Error(`unexpected call ${call.method} ${call.url}`);
      let a = answers.shift();
      if (typeof a === 'function') a = await a(call);
      if (a instanceof Error) throw a;
      return a;
    },
    { calls },
  );
  return f;
}

/**
 * An answer that never comes unless the request is aborted (then it
 * rejects the way fetch does).
 * @param {Call} call
 */
export function hang(call) {
  return new Promise((_, reject) => {
    const s = call.signal;
    if (!s) return;
    const fail = () => reject(new DOMException('This operation was aborted', 'AbortError'));
    if (s.aborted) fail();
    s.addEventListener('abort', fail, { once: true });
  });
}

/** Header names in lower case (the client writes them in canonical case). */
export function lower(headers) {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
