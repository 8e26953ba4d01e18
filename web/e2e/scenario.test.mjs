// Issue 6's first scenario as one story, in a real browser against a real
// `kmt demo` with semantic search on: an author writes an article that
// breaks its category's rule, sees the field errors, fixes it and submits;
// a reviewer sends it back with a note; the author resubmits; the reviewer
// approves (flows/write.mjs). Then a viewer finds that same article by a
// paraphrase and by a typo, filters by its facet, opens it, switches level
// and rates it (flows/read.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchChromium } from './harness.mjs';
import { authorWritesAndGetsApproved } from './flows/write.mjs';
import { waitFindable, viewerFindsOpensRates, api } from './flows/read.mjs';

/** @type {import('./harness.mjs').Server} */
let server;
/** @type {Awaited<ReturnType<typeof launchChromium>>} */
let chromium;

before(async () => {
  server = await startServer({ semantic: true });
  chromium = await launchChromium();
});

after(async () => {
  await chromium?.stop();
  await server?.stop();
});

test('issue 6: written, sent back, resubmitted, approved — then found by meaning and by a typo, filtered, opened, read at both levels and rated', async () => {
  const w = await authorWritesAndGetsApproved(chromium.browser, server);
  // None of these words is in the article: only search by meaning finds it.
  const paraphrase = 'money back when the boat trip did not sail';
  await waitFindable(server, 'vera', paraphrase, w.id, 'semantic');

  const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await viewerFindsOpensRates(page, server, {
    id: w.id,
    title: w.title,
    paraphrase,
    typo: 'ferry refnud',
    facet: `category:${w.category}`,
    stars: 5,
  });
  assert.deepEqual(errors, []);
  // The rating reached the store, from the viewer.
  const rated = await api(server, 'vera', 'GET', `/v1/articles/${w.id}/rating`);
  assert.equal(rated.status, 200, JSON.stringify(rated.body));
  assert.equal(rated.body.your_stars, 5, JSON.stringify(rated.body));
  await ctx.close();
});
