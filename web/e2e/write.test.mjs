// The writing journey in a real browser against a real `kmt demo`: author
// (rule errors by field, fix, submit), reviewer (send back with a note),
// author (sees the note, resubmits), reviewer (approves: published). The
// flow lives in flows/write.mjs so the reader's journey can chain on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchChromium, signInShell, screenshots } from './harness.mjs';
import { authorWritesAndGetsApproved } from './flows/write.mjs';
import { waitFindable } from './flows/read.mjs';
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
  // Indexing follows the store asynchronously: wait for it (bounded).
  await waitFindable(server, 'vera', 'ferry crossing refund', w.id, 'lexical');
  assert.equal((await vera.search({ q: w.hiddenWord, mode: 'lexical' })).total, 0);
});

test('editing a published article drafts beside the live version; the reviewer sees the changes', async () => {
  const api = new KmtClient({ baseUrl: server.url, token: server.accounts.admin.token });
  // A published article (created directly by the admin, as an import would;
  // the admin edits it like its owner).
  const live = await api.createArticle({
    title: 'Replacing a lost parking permit', category: 'travel-refunds', status: 'published',
    summary: '- Report the loss\n- Pay the fee', body: 'Step one.\nStep two.', tags: ['parking'],
  });
  const vera = new KmtClient({ baseUrl: server.url, token: server.accounts.vera.token });

  const authorCtx = await chromium.browser.newContext();
  const reviewerCtx = await chromium.browser.newContext();
  try {
    const a = await authorCtx.newPage();
    await a.goto(`${server.url}/editor?id=${live.id}`);
    await signInShell(a, server, 'admin');
    await a.waitForSelector('form#editor[data-ready][data-status="published"]');
    assert.match((await a.textContent('#status')) ?? '', /changes are saved as a draft/);
    await a.fill('#body', 'Step one.\nStep two, with the form PP-3.');
    await a.click('#save');
    await a.waitForFunction(() => /Draft saved/.test(document.getElementById('status')?.textContent ?? ''));
    // The live version is unchanged while the draft waits.
    assert.equal((await vera.article(live.id, { level: 'detailed' })).body, 'Step one.\nStep two.');
    await a.click('#submit');
    await a.waitForFunction(() => /Submitted for review/.test(document.getElementById('status')?.textContent ?? ''));

    const r = await reviewerCtx.newPage();
    await r.goto(`${server.url}/review`);
    await signInShell(r, server, 'rita');
    await r.waitForSelector('main[data-ready]');
    await r.locator(`#queue li[data-article="${live.id}"]`).getByRole('button', { name: 'Open submission' }).click();
    await r.waitForSelector('#submission:not([hidden]) #diff');
    assert.match((await r.textContent('#diff')) ?? '', /Changes to the published version/);
    assert.deepEqual(await r.locator('#diff .add').allTextContents(), ['+ Step two, with the form PP-3.']);
    assert.deepEqual(await r.locator('#diff .del').allTextContents(), ['- Step two.']);
    await screenshots(r, 'review-changes');
    await r.click('#approve');
    await r.waitForFunction(() => /Approved: .* is published/.test(document.getElementById('status')?.textContent ?? ''));
    assert.equal((await vera.article(live.id, { level: 'detailed' })).body, 'Step one.\nStep two, with the form PP-3.');
  } finally {
    await authorCtx.close();
    await reviewerCtx.close();
  }
});
