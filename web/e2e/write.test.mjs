// The writing journey in a real browser against a real `kmt demo`: author
// (rule errors by field, fix, submit), reviewer (send back with a note),
// author (sees the note, resubmits), reviewer (approves: published). The
// flow lives in flows/write.mjs so the reader's journey can chain on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchChromium } from './harness.mjs';
import { authorWritesAndGetsApproved } from './flows/write.mjs';
import { KmtClient } from '../app/kmt-client.js';

/** @type {import('./harness.mjs').Server} */
let server;
/** @type {Awaited<ReturnType<typeof launchChromium>>} */
let chromium;

before(async () => {
  server = await startServer();
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.stop();
  await server?.stop();
});

test('an author writes against a rule, a reviewer sends it back, the author resubmits, the reviewer approves', async () => {
  const w = await authorWritesAndGetsApproved(chromium.browser, server);
  // Published and searchable; the reviewer-only section stays hidden from a viewer.
  const vera = new KmtClient({ baseUrl: server.url, token: server.accounts.vera.token });
  const seen = await vera.article(w.id, { level: 'detailed' });
  assert.equal(seen.status, 'published');
  assert.ok(seen.body.includes('form FR-12'));
  assert.ok(!seen.body.includes(w.hiddenWord), 'the reviewer-only section is hidden from a viewer');
  const hits = await vera.search({ q: 'ferry crossing refund', mode: 'lexical' });
  assert.ok(hits.hits.some((h) => h.id === w.id), JSON.stringify(hits.hits.map((h) => h.title)));
  assert.equal((await vera.search({ q: w.hiddenWord, mode: 'lexical' })).total, 0);
});
