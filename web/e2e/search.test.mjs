// The search page in a real browser against a real `kmt demo`: sign in
// with the form, results as you type (a typo still finds the article),
// facet filters with counts, the mode switch, pages; screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

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

/** @param {import('playwright-core').Page} page */
const hitTitles = (page) => page.locator('#hits li > a').allTextContents();

/**
 * Waits until the results shown are those of this search (the page stamps
 * what it asked on `#hits`) and no request is in flight; returns the
 * status line (the ARIA live region).
 * @param {import('playwright-core').Page} page
 * @param {{q: string, mode?: string, offset?: number, filters?: string[]}} want
 */
async function shown(page, want) {
  await page.waitForFunction((w) => {
    const d = document.getElementById('hits');
    return !!d && !d.hasAttribute('aria-busy') && d.dataset.q === w.q && d.dataset.mode === w.mode &&
      d.dataset.offset === w.offset && d.dataset.filters === w.filters;
  }, { q: want.q, mode: want.mode ?? '', offset: String(want.offset ?? 0), filters: (want.filters ?? []).join('|') },
  { timeout: 10_000 });
  return (await page.textContent('#status')) ?? '';
}

test('a viewer signs in, searches with a typo, filters by a facet, switches mode and pages', async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);

  await page.fill('#username', 'vera');
  await page.fill('#password', server.accounts.vera.password);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#who:not([hidden])');
  assert.equal(await page.textContent('#who-name'), 'Signed in as vera');

  // A typo: the page still finds the abatement articles.
  await page.fill('#q', 'abatment');
  const first = await shown(page, { q: 'abatment' });
  assert.match(first, /^\d+ articles?/);
  const titles = await hitTitles(page);
  assert.ok(titles.some((t) => /abatement/i.test(t)), `${first}: ${titles.join(' | ')}`);
  assert.ok((await page.locator('#hits mark').count()) > 0, 'matches highlighted');

  // Facets list counts; choosing one narrows the results to it.
  const box = page.locator('#facets fieldset').first().locator('label').first();
  const [, value, count] = /^\s*(\S+) \((\d+)\)$/.exec((await box.textContent()) ?? '') ?? [];
  assert.ok(value, 'a category facet with a count');
  await box.locator('input').check();
  const filtered = await shown(page, { q: 'abatment', filters: [`category:${value}`] });
  assert.match(filtered, new RegExp(`^${count} articles?`));
  for (const meta of await page.locator('#hits .meta').allTextContents()) {
    assert.ok(meta.startsWith(value), `${meta} is in ${value}`);
  }
  await box.locator('input').uncheck();
  await shown(page, { q: 'abatment' });

  // The mode switch: by words.
  await page.selectOption('#mode', 'lexical');
  assert.match(await shown(page, { q: 'abatment', mode: 'lexical' }), /· lexical$/);

  // Pages: a broad word has more than one page.
  await page.fill('#q', 'tax');
  assert.match(await shown(page, { q: 'tax', mode: 'lexical' }), /showing 1–10 /);
  assert.equal(await page.isDisabled('#prev'), true);
  await page.click('#next');
  assert.match(await shown(page, { q: 'tax', mode: 'lexical', offset: 10 }), /showing 11–/);
  assert.match((await page.textContent('#page')) ?? '', /^Page 2 of \d+$/);

  // Nothing found: the page says what to try.
  await page.fill('#q', 'zzqxv');
  assert.match(await shown(page, { q: 'zzqxv', mode: 'lexical' }), /^No articles found/);
  assert.equal(await page.isVisible('#empty'), true);

  await page.fill('#q', 'penalty');
  assert.match(await shown(page, { q: 'penalty', mode: 'lexical' }), /^\d+ articles?/);
  await screenshots(page, 'search');
  assert.deepEqual(errors, []);
  await page.close();
});
