// The usage dashboard in a real browser: usage is generated through the
// API first (searches, views, clicks, ratings, unanswered searches), then
// a reviewer's dashboard draws its charts with that data, lists top and
// no-result queries and content gaps, and sorts the article report.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchChromium, signInShell, screenshots } from './harness.mjs';
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

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Searches, views, clicks and ratings by two viewers, and a need nobody
 * answers (asked three ways, twice each).
 */
async function generateUsage() {
  const vera = new KmtClient({ baseUrl: server.url, token: server.accounts.vera.token });
  const harry = new KmtClient({ baseUrl: server.url, token: server.accounts.harry.token });
  for (const c of [vera, harry]) {
    for (const q of ['penalty', 'penalty', 'abatement', 'tax', 'zorblax quibbleton', 'zorblax quibbleton']) {
      const res = await c.search({ q, mode: 'lexical' });
      if (res.hits.length && res.search_id) {
        await c.events([{ kind: 'click', article_id: res.hits[0].id, position: 0, search_id: res.search_id }]);
        await c.article(res.hits[0].id);
      }
    }
    const top = (await c.search({ q: 'penalty', mode: 'lexical', limit: 3 })).hits;
    for (const h of top) await c.article(h.id);
    await c.rate(top[0].id, 4);
  }
}

test('the dashboard renders usage, queries, gaps and the sortable report', async () => {
  await generateUsage();
  // Usage is written off the request path in batches: wait until it is in.
  const rita = new KmtClient({ baseUrl: server.url, token: server.accounts.rita.token });
  for (let i = 0; ; i++) {
    const views = await rita.timeseries({ metric: 'views' });
    const q = await rita.queryReport();
    const gaps = await rita.gaps();
    if (views.points.some((p) => p.count > 0) && q.overall.searches >= 12 && gaps.length > 0) break;
    if (i > 100) assert.fail(`usage never arrived: ${JSON.stringify({ views: views.points.length, q: q.overall, gaps })}`);
    await sleep(200);
  }

  const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/dashboard`);
  await signInShell(page, server, 'rita');
  await page.waitForSelector('main[data-ready]');

  // Usage over time: an SVG chart with bars for the views, and its table.
  const total = Number(await page.getAttribute('#usage-chart', 'data-total'));
  assert.ok(total > 0, 'views counted');
  const bars = await page.locator('#usage-svg rect.bar').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-count'))));
  assert.ok(bars.length > 0 && bars.some((n) => n > 0), `bars: ${bars}`);
  assert.equal(bars.reduce((a, b) => a + b, 0), total);
  assert.equal(await page.getAttribute('#usage-svg', 'role'), 'img');
  assert.match((await page.textContent('#usage-svg-desc')) ?? '', /article views/);
  assert.equal(await page.locator('#usage-table tbody tr').count(), bars.length);
  await page.selectOption('#metric', 'searches');
  await page.waitForSelector('#usage-chart[data-metric="searches"]:not([aria-busy])');
  assert.ok(Number(await page.getAttribute('#usage-chart', 'data-total')) >= 12);

  // Top queries (chart and table), searches that found nothing, gaps.
  assert.ok(await page.locator('#top-svg rect.bar').count() > 0);
  assert.equal(await page.locator('#top-table tbody tr').first().locator('th').textContent(), 'penalty');
  assert.match((await page.textContent('#none-table')) ?? '', /zorblax quibbleton/);
  assert.match((await page.textContent('#gaps-list')) ?? '', /zorblax quibbleton/);
  assert.match((await page.getAttribute('#gaps-list a', 'href')) ?? '', /^\/editor\?title=zorblax\+quibbleton/);

  // The report sorts on every column; the heading says how.
  const report = page.locator('#report-table');
  assert.equal(await report.locator('th[data-key="uses"]').getAttribute('aria-sort'), 'descending');
  const uses = await report.locator('tbody tr td:nth-child(7)').allTextContents();
  assert.deepEqual(uses.map(Number), [...uses.map(Number)].sort((a, b) => b - a));
  assert.ok(Number(uses[0]) > 0);
  for (const key of ['title', 'id', 'category', 'avg_rating', 'helpful_pct']) {
    await report.locator(`th[data-key="${key}"] button`).click();
    await page.waitForSelector(`#report-table[data-sort^="${key}:"]:not([aria-busy])`);
    const sort = await report.getAttribute('data-sort');
    assert.equal(await report.locator(`th[data-key="${key}"]`).getAttribute('aria-sort'), sort?.endsWith('asc') ? 'ascending' : 'descending');
    assert.equal(await report.locator('th[aria-sort="none"]').count(), 11, 'one column sorted at a time');
  }
  // Every row on one page, so that one order is the other reversed.
  const allOnOnePage = () => page.waitForFunction(() => {
    const m = /of (\d+)$/.exec(document.getElementById('report-range')?.textContent ?? '');
    return m && !document.querySelector('#report-table[aria-busy]')
      && document.querySelectorAll('#report-table tbody tr').length === Number(m[1]);
  });
  await page.selectOption('#report-size', '250');
  await allOnOnePage();
  await report.locator('th[data-key="title"] button').click();
  await page.waitForSelector('#report-table[data-sort="title:asc"]:not([aria-busy])');
  const titles = await report.locator('tbody tr th').allTextContents();
  assert.ok(titles.length > 1);
  await report.locator('th[data-key="title"] button').click();
  await page.waitForSelector('#report-table[data-sort="title:desc"]:not([aria-busy])');
  assert.deepEqual(await report.locator('tbody tr th').allTextContents(), [...titles].reverse());
  // Keyboard: the sort button keeps the focus after sorting.
  assert.equal(await page.evaluate(() => document.activeElement?.closest('th')?.getAttribute('data-key')), 'title');

  // Pages: 25 rows a page; next and previous; the range says where; the
  // pages do not overlap and sorting goes back to the first.
  const rowsOnPage = (n) => page.waitForFunction((n) => !document.querySelector('#report-table[aria-busy]')
    && document.querySelectorAll('#report-table tbody tr').length === n, n);
  const ids = () => report.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
  const rowsTotal = titles.length;
  assert.ok(rowsTotal > 25, `enough articles to page: ${rowsTotal}`);
  await page.selectOption('#report-size', '25');
  await rowsOnPage(25);
  assert.equal(await page.textContent('#report-range'), `Articles 1–25 of ${rowsTotal}`);
  assert.ok(await page.locator('#report-prev').isDisabled());
  const first = await ids();
  await page.click('#report-next');
  await page.waitForSelector('#report-table[data-offset="25"]:not([aria-busy])');
  const second = await ids();
  assert.equal(second.length, Math.min(25, rowsTotal - 25));
  assert.ok(second.every((id) => !first.includes(id)), 'pages do not overlap');
  assert.equal(await page.textContent('#report-range'), `Articles 26–${25 + second.length} of ${rowsTotal}`);
  await page.click('#report-prev');
  await page.waitForSelector('#report-table[data-offset="0"]:not([aria-busy])');
  assert.deepEqual(await ids(), first);
  await page.click('#report-next');
  await page.waitForSelector('#report-table[data-offset="25"]:not([aria-busy])');
  await report.locator('th[data-key="id"] button').click();
  await page.waitForSelector('#report-table[data-offset="0"][data-sort^="id:"]:not([aria-busy])');

  await screenshots(page, 'dashboard');
  assert.deepEqual(errors, []);
  await ctx.close();
});
