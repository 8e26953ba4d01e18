// Request building: URLs, query encoding, headers, CSRF on writes only,
// JSON bodies, bearer mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KmtClient, queryString, filterParams } from '../app/kmt-client.js';
import { stubFetch, json, lower } from './stub.mjs';

const RESULTS = { hits: [], total: 0, facets: {}, relaxed: false, fuzzy_words: 0, mode: 'lexical', took_ms: 1, timings: { total: 1 } };

function client(...answers) {
  const fetch = stubFetch(...answers);
  return { c: new KmtClient({ fetch, baseUrl: 'http://kmt.test/' }), fetch };
}

test('search encodes every parameter, repeats filters and joins facets', async () => {
  const { c, fetch } = client(json(200, RESULTS));
  await c.search({
    q: 'penalty abatement & interest',
    filter: ['category:penalties', 'tags:a b', 'updated_at>=2025-01-01'],
    facets: ['category', 'tags'],
    sort: 'updated',
    limit: 20,
    offset: 40,
    match: 'any',
    mode: 'hybrid',
    fusion: 'convex:0.3',
    explain: true,
  });
  const u = new URL(fetch.calls[0].url);
  assert.equal(u.origin + u.pathname, 'http://kmt.test/v1/search');
  assert.equal(u.searchParams.get('q'), 'penalty abatement & interest');
  assert.deepEqual(u.searchParams.getAll('filter'), ['category:penalties', 'tags:a b', 'updated_at>=2025-01-01']);
  assert.equal(u.searchParams.get('facets'), 'category,tags');
  assert.equal(u.searchParams.get('sort'), 'updated');
  assert.equal(u.searchParams.get('limit'), '20');
  assert.equal(u.searchParams.get('offset'), '40');
  assert.equal(u.searchParams.get('match'), 'any');
  assert.equal(u.searchParams.get('mode'), 'hybrid');
  assert.equal(u.searchParams.get('fusion'), 'convex:0.3');
  assert.equal(u.searchParams.get('explain'), 'true');
  // Reserved characters are escaped, not sent raw.
  assert.ok(fetch.calls[0].url.includes('q=penalty+abatement+%26+interest'), fetch.calls[0].url);
  assert.equal(fetch.calls[0].method, 'GET');
  assert.equal(fetch.calls[0].body, undefined);
});

test('search leaves out parameters not given, and filters may be given by field', async () => {
  const { c, fetch } = client(json(200, RESULTS), json(200, RESULTS));
  await c.search({ q: 'x', explain: false, facets: [] });
  assert.equal(fetch.calls[0].url, 'http://kmt.test/v1/search?q=x');
  await c.search({ filter: { category: ['a', 'b'], tags: 'c' } });
  const u = new URL(fetch.calls[1].url);
  assert.deepEqual(u.searchParams.getAll('filter'), ['category:a', 'category:b', 'tags:c']);
  assert.deepEqual(filterParams(undefined), undefined);
});

test('search returns the X-Search-Id for click events', async () => {
  const { c } = client(json(200, RESULTS, { 'x-search-id': 'abc123' }), json(200, RESULTS));
  assert.equal((await c.search({ q: 'x' })).search_id, 'abc123');
  assert.equal((await c.search({})).search_id, undefined);
});

test('queryString skips undefined and null, repeats arrays, writes booleans', () => {
  assert.equal(queryString(undefined), '');
  assert.equal(queryString({ a: undefined, b: null }), '');
  assert.equal(queryString({ a: [1, 2], b: true, c: 'x y' }), '?a=1&a=2&b=true&c=x+y');
});

test('path segments are escaped', async () => {
  const { c, fetch } = client(json(200, {}), json(200, {}), json(200, {}), json(200, {}));
  await c.article('a/b?c', { level: 'summary' });
  await c.rule('*');
  await c.userHistory('jo doe', { limit: 5 });
  await c.diff(7, 1, 3);
  assert.deepEqual(fetch.calls.map((x) => x.url), [
    'http://kmt.test/v1/articles/a%2Fb%3Fc?level=summary',
    'http://kmt.test/v1/rules/*',
    'http://kmt.test/v1/users/jo%20doe/history?limit=5',
    'http://kmt.test/v1/articles/7/diff?from=1&to=3',
  ]);
});

test('sign-in posts JSON, keeps the CSRF token and sends it on writes only', async () => {
  const { c, fetch } = client(
    json(200, { username: 'alice', roles: ['author'], csrf_token: 'csrf-1' }),
    json(200, RESULTS),
    json(201, { id: 5 }),
    json(200, { id: 5 }),
    new Response(null, { status: 204 }),
  );
  const s = await c.signIn('alice', 'secret password');
  assert.equal(s.username, 'alice');
  const signIn = fetch.calls[0];
  assert.equal(signIn.url, 'http://kmt.test/v1/session');
  assert.equal(signIn.method, 'POST');
  assert.deepEqual(JSON.parse(signIn.body), { username: 'alice', password: 'secret password' });
  assert.equal(lower(signIn.headers)['content-type'], 'application/json');
  assert.equal(signIn.credentials, 'same-origin');
  assert.equal(lower(signIn.headers)['x-csrf-token'], undefined, 'no token before sign-in');

  await c.search({ q: 'x' });
  assert.equal(lower(fetch.calls[1].headers)['x-csrf-token'], undefined, 'reads carry no CSRF token');
  assert.equal(lower(fetch.calls[1].headers).authorization, undefined, 'cookie mode sends no bearer');

  await c.createArticle({ title: 'T', category: 'c', tags: ['a'] });
  assert.equal(lower(fetch.calls[2].headers)['x-csrf-token'], 'csrf-1');
  assert.deepEqual(JSON.parse(fetch.calls[2].body), { title: 'T', category: 'c', tags: ['a'] });

  await c.updateArticle(5, { title: 'U', expected_version: 1 });
  assert.equal(fetch.calls[3].method, 'PUT');
  assert.equal(lower(fetch.calls[3].headers)['x-csrf-token'], 'csrf-1');

  await c.signOut();
  assert.equal(fetch.calls[4].method, 'DELETE');
  assert.equal(lower(fetch.calls[4].headers)['x-csrf-token'], 'csrf-1');
  assert.equal(c.csrfToken, undefined, 'signing out forgets the token');
});

test('session() recovers the CSRF token after a page load, null when signed out', async () => {
  const { c } = client(
    json(200, { username: 'rita', roles: ['reviewer'], csrf_token: 'csrf-2' }),
    new Response(JSON.stringify({ title: 'Unauthorized', status: 401, detail: 'sign in' }), {
      status: 401, headers: { 'content-type': 'application/problem+json' },
    }),
  );
  assert.equal((await c.session()).username, 'rita');
  assert.equal(c.csrfToken, 'csrf-2');
  assert.equal(await c.session(), null);
  assert.equal(c.csrfToken, undefined);
});

test('bearer mode sends the token on reads and writes', async () => {
  const fetch = stubFetch(json(200, { username: 'bot', roles: [], permissions: [] }), json(200, { marked: 3 }));
  const c = new KmtClient({ fetch, token: 'kmt_abc' });
  await c.me();
  assert.equal(fetch.calls[0].url, '/v1/me', 'no base URL: relative to the page');
  assert.equal(lower(fetch.calls[0].headers).authorization, 'Bearer kmt_abc');
  assert.equal(await c.markRead(), 3);
  assert.equal(lower(fetch.calls[1].headers).authorization, 'Bearer kmt_abc');
  assert.deepEqual(JSON.parse(fetch.calls[1].body), {});
  c.setToken('');
  assert.equal(c.token, undefined);
});

test('workflow calls: approvals without a note send no body; rejections send the note', async () => {
  const { c, fetch } = client(...Array.from({ length: 7 }, () => json(200, [])));
  await c.approve('slug-1');
  await c.reject('slug-1', 'needs sources');
  await c.approveTask(12, 'fine');
  await c.rejectTask(12, 'no');
  await c.submit(3);
  await c.tasks({ includeDone: true });
  await c.requestUpdate(3, { roles: ['author'], note: 'law changed', due_days: 7 });
  const calls = fetch.calls.map((x) => [x.method, x.url.replace('http://kmt.test', ''), x.body && JSON.parse(x.body)]);
  assert.deepEqual(calls, [
    ['POST', '/v1/articles/slug-1/approve', undefined],
    ['POST', '/v1/articles/slug-1/reject', { note: 'needs sources' }],
    ['POST', '/v1/tasks/12/approve', { note: 'fine' }],
    ['POST', '/v1/tasks/12/reject', { note: 'no' }],
    ['POST', '/v1/articles/3/submit', undefined],
    ['GET', '/v1/tasks?include_done=true', undefined],
    ['POST', '/v1/articles/3/request-update', { roles: ['author'], note: 'law changed', due_days: 7 }],
  ]);
  assert.equal(lower(fetch.calls[0].headers)['content-type'], undefined, 'no body, no content type');
});

test('the rest of the API maps to its routes', async () => {
  const { c, fetch } = client(...Array.from({ length: 26 }, () => json(200, { suggestions: [], related: [], unread: 4, accepted: 2 })));
  await c.suggest('pen', { limit: 5 });
  await c.related(9, { limit: 3 });
  assert.equal(await c.unreadCount(), 4);
  await c.notifications({ unread: false, limit: 10 });
  await c.markRead([1, 2]);
  await c.versions(9);
  await c.revert(9, 2);
  await c.retire(9);
  await c.draft(9);
  await c.saveDraft(9, { body: 'b' });
  await c.rules();
  await c.saveRule('penalties', { mandatory_fields: ['tags'], escalation: [{ after_hours: 24, to_role: 'director' }] });
  await c.ruleHistory('penalties');
  await c.roles();
  await c.createGroup({ name: 'field-office' });
  await c.createUser({ username: 'u1', roles: ['viewer'] });
  await c.setRoles('u1', ['viewer', 'field-office']);
  assert.equal(await c.events([{ kind: 'click', article_id: 9, position: 0, search_id: 's' }]), 2);
  await c.rate(9, 4);
  await c.helpful(9, true);
  await c.feedback(9, 'out of date');
  await c.articleReport({ sort: 'uses', order: 'asc', from: '2026-01-01', limit: 10 });
  await c.queryReport({ limit: 5 });
  await c.timeseries({ metric: 'views', bucket: 'day' });
  await c.assign(9, { roles: ['viewer'], kind: 'read' });
  await c.myAssignments({ includeDone: true });
  const calls = fetch.calls.map((x) => `${x.method} ${x.url.replace('http://kmt.test', '')}${x.body ? ' ' + x.body : ''}`);
  assert.deepEqual(calls, [
    'GET /v1/suggest?q=pen&limit=5',
    'GET /v1/articles/9/related?limit=3',
    'GET /v1/notifications?unread=true&limit=1',
    'GET /v1/notifications?limit=10',
    'POST /v1/notifications/read {"ids":[1,2]}',
    'GET /v1/articles/9/versions',
    'POST /v1/articles/9/revert {"version":2}',
    'POST /v1/articles/9/retire',
    'GET /v1/articles/9/draft',
    'PUT /v1/articles/9/draft {"body":"b"}',
    'GET /v1/rules',
    'PUT /v1/rules/penalties {"mandatory_fields":["tags"],"escalation":[{"after_hours":24,"to_role":"director"}]}',
    'GET /v1/rules/penalties/history',
    'GET /v1/roles',
    'POST /v1/roles {"name":"field-office"}',
    'POST /v1/users {"username":"u1","roles":["viewer"]}',
    'PUT /v1/users/u1/roles {"roles":["viewer","field-office"]}',
    'POST /v1/events {"events":[{"kind":"click","article_id":9,"position":0,"search_id":"s"}]}',
    'PUT /v1/articles/9/rating {"stars":4}',
    'POST /v1/articles/9/helpful {"helpful":true}',
    'POST /v1/articles/9/feedback {"comment":"out of date"}',
    'GET /v1/analytics/articles?sort=uses&order=asc&from=2026-01-01&limit=10',
    'GET /v1/analytics/queries?limit=5',
    'GET /v1/analytics/timeseries?metric=views&bucket=day',
    'POST /v1/articles/9/assignments {"roles":["viewer"],"kind":"read"}',
    'GET /v1/assignments/mine?include_done=true',
  ]);
});

test('a 204 answer decodes to undefined; a non-JSON success to its text', async () => {
  const { c } = client(new Response(null, { status: 204 }), new Response('ok', { status: 200, headers: { 'content-type': 'text/plain' } }));
  assert.equal(await c.deleteArticle(4), undefined);
  assert.equal(await c.get('/healthz'), 'ok');
});

test('requestArticle posts the words to the gap requests with the CSRF token', async () => {
  const { c, fetch } = client(json(201, { query: 'crypto gains', requests: 2 }));
  c.csrfToken = 'csrf-9';
  const r = await c.requestArticle('Crypto  gains');
  assert.deepEqual(r, { query: 'crypto gains', requests: 2 });
  assert.equal(fetch.calls[0].url, 'http://kmt.test/v1/prompts/requests');
  assert.equal(fetch.calls[0].method, 'POST');
  assert.deepEqual(JSON.parse(fetch.calls[0].body ?? ''), { query: 'Crypto  gains' });
  assert.equal(lower(fetch.calls[0].headers)['x-csrf-token'], 'csrf-9');
});
