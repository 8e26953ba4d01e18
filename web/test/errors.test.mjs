// Error handling: problem+json → KmtError fields, non-JSON error bodies,
// network failures, timeouts, aborts, and retries (reads only).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KmtClient, KmtError } from '../app/kmt-client.js';
import { stubFetch, json, problem, hang } from './stub.mjs';

const fast = (fetch, opts = {}) => new KmtClient({ fetch, retryDelayMs: 1, ...opts });

test('a problem document becomes a KmtError with its fields', async () => {
  const fetch = stubFetch(problem(422, 'Unprocessable Entity', 'the submission breaks the rules of its category', {
    errors: [
      { field: 'tags', message: 'is mandatory in this category' },
      { field: 'summary', message: 'must be at least 40 characters' },
      { field: 'summary', message: 'is mandatory in this category' },
    ],
  }, { 'x-request-id': 'req-9' }));
  const err = await fast(fetch).submit(3).catch((e) => e);
  assert.ok(err instanceof KmtError && err instanceof Error);
  assert.equal(err.name, 'KmtError');
  assert.equal(err.kind, 'http');
  assert.equal(err.status, 422);
  assert.equal(err.title, 'Unprocessable Entity');
  assert.equal(err.detail, 'the submission breaks the rules of its category');
  assert.equal(err.type, 'https://kmt.dev/problems/unprocessable-entity');
  assert.equal(err.method, 'POST');
  assert.equal(err.url, '/v1/articles/3/submit');
  assert.equal(err.requestId, 'req-9');
  assert.equal(err.errors.length, 3);
  assert.deepEqual(err.fieldErrors(), {
    tags: ['is mandatory in this category'],
    summary: ['must be at least 40 characters', 'is mandatory in this category'],
  });
  assert.match(err.message, /^422 the submission breaks/);
});

test('a single offending field is kept and shows in fieldErrors()', async () => {
  const fetch = stubFetch(problem(400, 'Bad Request', 'unknown parameter "bogus"', { field: 'bogus' }));
  const err = await fast(fetch).get('/v1/search', { query: { bogus: 1 } }).catch((e) => e);
  assert.equal(err.status, 400);
  assert.equal(err.field, 'bogus');
  assert.deepEqual(err.errors, []);
  assert.deepEqual(err.fieldErrors(), { bogus: ['unknown parameter "bogus"'] });
});

test('a CSRF refusal names the header; a 429 carries Retry-After', async () => {
  const fetch = stubFetch(
    problem(403, 'Forbidden', 'missing or wrong X-CSRF-Token header', { field: 'x-csrf-token' }),
    problem(429, 'Too Many Requests', 'too many failed sign-ins; try again in 30 seconds', {}, { 'retry-after': '30' }),
  );
  const c = fast(fetch);
  const csrf = await c.rate(1, 5).catch((e) => e);
  assert.equal(csrf.status, 403);
  assert.equal(csrf.field, 'x-csrf-token');
  const many = await c.signIn('alice', 'wrong').catch((e) => e);
  assert.equal(many.status, 429);
  assert.equal(many.retryAfter, 30);
  assert.equal(c.csrfToken, undefined);
});

test('a non-JSON error body (a proxy page) becomes a readable KmtError', async () => {
  const fetch = stubFetch(new Response('<html><body>\n  <h1>502 Bad Gateway</h1>\n</body></html>', {
    status: 502, statusText: 'Bad Gateway', headers: { 'content-type': 'text/html' },
  }));
  const err = await fast(fetch, { retries: 0 }).me().catch((e) => e);
  assert.equal(err.kind, 'http');
  assert.equal(err.status, 502);
  assert.equal(err.title, 'Bad Gateway');
  assert.equal(err.detail, '<html><body> <h1>502 Bad Gateway</h1> </body></html>');
  assert.deepEqual(err.errors, []);
});

test('an error that claims JSON but is not, and an empty error body', async () => {
  const fetch = stubFetch(
    new Response('oops', { status: 500, headers: { 'content-type': 'application/json' } }),
    new Response('', { status: 404 }),
  );
  const c = fast(fetch);
  const bad = await c.createArticle({ title: 't', category: 'c' }).catch((e) => e);
  assert.equal(bad.status, 500);
  assert.equal(bad.detail, 'oops');
  const empty = await c.deleteArticle(1).catch((e) => e);
  assert.equal(empty.status, 404);
  assert.equal(empty.detail, 'DELETE /v1/articles/1 failed with HTTP 404');
});

test('a success answer that is not valid JSON is a parse error', async () => {
  const fetch = stubFetch(new Response('{"hits": [', { status: 200, headers: { 'content-type': 'application/json' } }));
  const err = await fast(fetch).search({ q: 'x' }).catch((e) => e);
  assert.equal(err.kind, 'parse');
  assert.equal(err.status, 200);
  assert.ok(err.cause instanceof SyntaxError);
});

test('a network failure is wrapped clearly, with the cause kept', async () => {
  const cause = new TypeError('fetch failed');
  const fetch = stubFetch(cause);
  const err = await fast(fetch, { retries: 0 }).search({ q: 'x' }).catch((e) => e);
  assert.ok(err instanceof KmtError);
  assert.equal(err.kind, 'network');
  assert.equal(err.status, 0);
  assert.equal(err.cause, cause);
  assert.match(err.message, /network error: could not reach the server for GET \/v1\/search\?q=x \(fetch failed\)/);
});

test('reads are retried once after a network failure or a 503', async () => {
  const fetch = stubFetch(new TypeError('fetch failed'), json(200, { username: 'a', roles: [], permissions: [] }));
  assert.equal((await fast(fetch).me()).username, 'a');
  assert.equal(fetch.calls.length, 2);

  const again = stubFetch(problem(503, 'Service Unavailable', 'index not ready'), problem(503, 'Service Unavailable', 'index not ready'));
  const err = await fast(again).me().catch((e) => e);
  assert.equal(err.status, 503);
  assert.equal(again.calls.length, 2, 'one retry, then the error');
});

test('writes are never retried', async () => {
  const fetch = stubFetch(new TypeError('fetch failed'), json(201, {}));
  const err = await fast(fetch, { retries: 3 }).createArticle({ title: 't', category: 'c' }).catch((e) => e);
  assert.equal(err.kind, 'network');
  assert.equal(fetch.calls.length, 1);

  const unavailable = stubFetch(problem(503, 'Service Unavailable', 'busy'), json(200, {}));
  const err2 = await fast(unavailable, { retries: 3 }).rate(1, 4).catch((e) => e);
  assert.equal(err2.status, 503);
  assert.equal(unavailable.calls.length, 1);
});

test('client errors (4xx) are not retried, even on reads', async () => {
  const fetch = stubFetch(problem(404, 'Not Found', 'no such article'), json(200, {}));
  const err = await fast(fetch, { retries: 3 }).article(99).catch((e) => e);
  assert.equal(err.status, 404);
  assert.equal(fetch.calls.length, 1);
});

test('a request without an answer in time fails with a timeout', async () => {
  const fetch = stubFetch(hang, hang);
  const c = fast(fetch, { timeoutMs: 30 });
  const t0 = Date.now();
  const err = await c.createArticle({ title: 't', category: 'c' }).catch((e) => e);
  assert.equal(err.kind, 'timeout');
  assert.equal(err.status, 0);
  assert.match(err.message, /no answer from POST \/v1\/articles within 30 ms/);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(fetch.calls.length, 1);
  // A per-request timeout overrides the client's.
  const err2 = await c.get('/v1/me', { timeoutMs: 10 }).catch((e) => e);
  assert.match(err2.message, /within 10 ms/);
  assert.equal(fetch.calls.length, 2, 'timeouts are not retried');
});

test("the caller's abort signal cancels a request and is told apart from a timeout", async () => {
  const fetch = stubFetch(hang, hang);
  const c = fast(fetch, { timeoutMs: 5000 });
  const ctl = new AbortController();
  const pending = c.search({ q: 'x' }, { signal: ctl.signal }).catch((e) => e);
  setTimeout(() => ctl.abort(), 10);
  const err = await pending;
  assert.equal(err.kind, 'aborted');
  assert.equal(fetch.calls.length, 1, 'an aborted read is not retried');
  // Already aborted: fails at once.
  const err2 = await c.suggest('pen', { signal: AbortSignal.abort() }).catch((e) => e);
  assert.equal(err2.kind, 'aborted');
});

test('the client needs a fetch', () => {
  const saved = globalThis.fetch;
  try {
    // @ts-ignore: simulating an environment without fetch
    globalThis.fetch = undefined;
    assert.throws(() => new KmtClient(), /no fetch/);
  } finally {
    globalThis.fetch = saved;
  }
});
