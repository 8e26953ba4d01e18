// The knowledge-development prompts (content gaps, articles to update) and
// what the writer pages rely on from the library: rule errors by field.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KmtClient, KmtError } from '../app/kmt-client.js';
import { stubFetch, json, problem } from './stub.mjs';

test('gaps and update prompts build their queries and return the lists', async () => {
  const gap = { suggested_title: 'ferry refund', category: null, searches: 3, zero_results: 3, queries: [] };
  const upd = { id: 4, slug: 's', title: 'T', category: 'c', owner: 'alice', impact: 2, uses: 1, previous_uses: 0, reasons: ['review_overdue'] };
  const fetch = stubFetch(json(200, [gap]), json(200, []), json(200, [upd]), json(200, []));
  const c = new KmtClient({ fetch, baseUrl: 'http://kmt.test' });
  assert.deepEqual(await c.gaps({ days: 7, limit: 5 }), [gap]);
  assert.deepEqual(await c.gaps(), []);
  assert.deepEqual(await c.updatePrompts({ days: 90 }), [upd]);
  await c.updatePrompts({ limit: 10 });
  assert.deepEqual(fetch.calls.map((x) => `${x.method} ${x.url.replace('http://kmt.test', '')}`), [
    'GET /v1/prompts/gaps?days=7&limit=5',
    'GET /v1/prompts/gaps',
    'GET /v1/prompts/updates?days=90',
    'GET /v1/prompts/updates?limit=10',
  ]);
});

test('a refused gap list (not a writer) is a 403 KmtError', async () => {
  const fetch = stubFetch(problem(403, 'Forbidden', 'needs permission article.write'));
  const c = new KmtClient({ fetch, baseUrl: 'http://kmt.test' });
  await assert.rejects(c.gaps(), (e) => e instanceof KmtError && e.status === 403 && e.kind === 'http');
});

test('a submit that breaks rules gives the editor every field at fault', async () => {
  const fetch = stubFetch(problem(422, 'Unprocessable Entity', 'the submission breaks 2 rules', {
    errors: [{ field: 'summary', message: 'is required in category audits' }, { field: 'tags', message: 'is required in category audits' }],
  }));
  const c = new KmtClient({ fetch, baseUrl: 'http://kmt.test' });
  await assert.rejects(c.submit(9), (e) => {
    assert.ok(e instanceof KmtError);
    assert.deepEqual(e.fieldErrors(), {
      summary: ['is required in category audits'],
      tags: ['is required in category audits'],
    });
    return true;
  });
  assert.equal(fetch.calls[0].url, 'http://kmt.test/v1/articles/9/submit');
});
