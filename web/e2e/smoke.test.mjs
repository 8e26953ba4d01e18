// Browser smoke test: a real `kmt demo` server and Debian's chromium. The
// home page loads the client library as a module under the server's
// strict CSP (no unsafe-inline), searching through it finds demo articles,
// and a signed-in browser writes with the session's CSRF token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { startServer, launchBrowser, screenshots } from './harness.mjs';

/** @type {import('./harness.mjs').Server} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.stop();
  await server?.stop();
});

/**
 * A new page that records script errors, CSP violations and error
 * answers (`failed`: "STATUS METHOD path"), for the test to check.
 * @returns {Promise<{page: import('playwright-core').Page, problems: string[], failed: string[]}>}
 */
async function openPage() {
  const page = await browser.context.newPage();
  const problems = [];
  const failed = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Error answers are checked one by one through `failed`.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return { page, problems, failed };
}

test('the home page loads the client library and searches through it', async () => {
  const { page, problems, failed } = await openPage();
  const library = page.waitForResponse((r) => r.url().endsWith('/assets/kmt-client.js'));
  await page.goto(`${server.url}/`);
  const lib = await library;
  assert.equal(lib.status(), 200);
  assert.match(lib.headers()['content-type'], /^text\/javascript/);
  assert.ok(!lib.headers()['content-security-policy'].includes('unsafe-inline'));

  // The page's own script searches through the library as the user types
  // (anonymous: public articles only).
  await page.fill('#q', 'penalty');
  await page.waitForSelector('#hits[data-q="penalty"]:not([aria-busy]) li', { timeout: 10_000 });
  const status = await page.textContent('#status');
  assert.match(status ?? '', /^\d+ articles?/);
  assert.ok((await page.locator('#hits li mark').count()) > 0, 'snippets highlight the word');

  // The library, imported by a page script, signs in with the session
  // cookie and searches what the viewer may read.
  const vera = server.accounts.vera;
  assert.ok(vera, `demo accounts parsed from the banner:\n${server.log()}`);
  const result = await page.evaluate(async ({ password }) => {
    const { KmtClient, KmtError } = await import('/assets/kmt-client.js');
    const kmt = new KmtClient();
    const who = await kmt.signIn('vera', password);
    const found = await kmt.search({ q: 'abatement', facets: ['category'], limit: 5 });
    const typo = await kmt.search({ q: 'abatment' });
    const suggestions = await kmt.suggest('abat');
    const article = await kmt.article(found.hits[0].id, { level: 'summary' });
    // A cookie-authenticated write carries the CSRF token...
    const rating = await kmt.rate(article.id, 4);
    // ...and without it the server refuses.
    const bare = new KmtClient();
    const refused = await bare.rate(article.id, 5).then(() => null, (e) => ({
      isKmtError: e instanceof KmtError, status: e.status, field: e.field,
    }));
    const notFound = await kmt.article('no-such-article').then(() => null, (e) => ({ status: e.status, detail: e.detail }));
    await kmt.signOut();
    const after = await kmt.session();
    return {
      who: who.username,
      total: found.total,
      titles: found.hits.map((h) => h.title),
      searchId: found.search_id,
      facets: Object.keys(found.facets),
      typoTotal: typo.total,
      suggestions: suggestions.length,
      articleId: article.id,
      level: article.level,
      stars: rating.your_stars,
      refused,
      notFound,
      after,
    };
  }, { password: vera.password });

  assert.equal(result.who, 'vera');
  assert.ok(result.total > 0, `hits for "abatement": ${JSON.stringify(result)}`);
  assert.ok(result.titles.some((t) => /abatement/i.test(t)), result.titles.join(' | '));
  assert.ok(result.searchId, 'X-Search-Id reaches the page');
  assert.deepEqual(result.facets, ['category']);
  assert.ok(result.typoTotal > 0, 'a typo still finds the article');
  assert.ok(result.suggestions > 0);
  assert.equal(result.level, 'summary');
  assert.equal(result.stars, 4);
  assert.deepEqual(result.refused, { isKmtError: true, status: 403, field: 'x-csrf-token' });
  assert.equal(result.notFound?.status, 404);
  assert.equal(result.after, null, 'signed out');

  const files = await screenshots(page, 'home');
  for (const f of files) assert.ok(existsSync(f), f);
  assert.deepEqual(problems, []);
  // Only the refusals asked for above.
  assert.deepEqual(failed, [
    '401 GET /v1/session', // the page asks whether a session exists
    '403 PUT /v1/articles/' + result.articleId + '/rating',
    '404 GET /v1/articles/no-such-article',
    '401 GET /v1/session',
  ]);
  await page.close();
});
