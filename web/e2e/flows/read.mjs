// The reader's side of the browser tests, as functions a test can chain
// (the lead's end-to-end story runs the author → reviewer flow, then
// `viewerFindsOpensRates` on the article they published). Everything here
// goes through the UI; the API is used only to check what the UI did.
import assert from 'node:assert/strict';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('../harness.mjs').Server} Server */

/**
 * Calls the API as a demo user (bearer token), for setup and checks.
 * @param {Server} server @param {string|null} user @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<{status: number, body: any}>}
 */
export async function api(server, user, method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (user) headers.authorization = `Bearer ${server.accounts[user].token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * Publishes an article as admin and waits until `q` finds it for `user`
 * (the index, and with semantic search the embeddings, follow the store).
 * @param {Server} server @param {Record<string, unknown>} article
 * @param {{user?: string, q?: string, mode?: string}} [wait]
 * @returns {Promise<any>} the article
 */
export async function publishArticle(server, article, wait = {}) {
  const r = await api(server, 'admin', 'POST', '/v1/articles', { status: 'published', ...article });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  if (wait.q) await waitFindable(server, wait.user ?? 'admin', wait.q, r.body.id, wait.mode);
  return r.body;
}

/**
 * Waits until a search for `q` (as `user`, in `mode`) lists article `id`.
 * @param {Server} server @param {string} user @param {string} q @param {number} id @param {string} [mode]
 */
export async function waitFindable(server, user, q, id, mode) {
  const deadline = Date.now() + 60_000;
  const path = `/v1/search?q=${encodeURIComponent(q)}&limit=20${mode ? `&mode=${mode}` : ''}`;
  for (;;) {
    const r = await api(server, user, 'GET', path);
    if (r.status === 200 && r.body.hits.some((/** @type {any} */ h) => h.id === id)) return;
    if (Date.now() > deadline) throw new Error(`${q} never found article ${id}: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/**
 * Signs in through the header's form (unless this user already is).
 * @param {Page} page @param {Server} server @param {string} user
 */
export async function signIn(page, server, user) {
  await page.waitForSelector('#shell .bar');
  if ((await page.textContent('#who-name')) === `Signed in as ${user}`) return;
  if (await page.isVisible('#signout')) {
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
  }
  await page.fill('#username', user);
  await page.fill('#password', server.accounts[user].password);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction((u) => document.getElementById('who-name')?.textContent === `Signed in as ${u}`, user);
}

/**
 * Waits until the search page shows the results of exactly this search
 * (it stamps what it asked on `#hits`); returns the status line.
 * @param {Page} page
 * @param {{q: string, mode?: string, offset?: number, filters?: string[]}} want
 */
export async function shown(page, want) {
  await page.waitForFunction((w) => {
    const d = document.getElementById('hits');
    return !!d && !d.hasAttribute('aria-busy') && d.dataset.q === w.q && d.dataset.mode === w.mode &&
      d.dataset.offset === w.offset && d.dataset.filters === w.filters;
  }, { q: want.q, mode: want.mode ?? '', offset: String(want.offset ?? 0), filters: (want.filters ?? []).join('|') },
  { timeout: 15_000 });
  return (await page.textContent('#status')) ?? '';
}

/** The result links shown: `{title, href}`. @param {Page} page */
export async function hitLinks(page) {
  return page.locator('#hits li > a').evaluateAll((as) => as.map((a) => ({ title: a.textContent ?? '', href: a.getAttribute('href') ?? '' })));
}

/** Waits until the article page has loaded everything. @param {Page} page */
export async function articleReady(page) {
  await page.waitForSelector('#content[data-ready="true"], #error:not([hidden])', { timeout: 15_000 });
}

/** @param {string} s */
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A viewer finds the article by a paraphrase (search by meaning: the
 * server must run with the model), then by a typo, narrows the results to
 * its facet, opens it, switches the reading level and rates it — all in
 * the UI, as `user` (default vera).
 * @param {Page} page
 * @param {Server} server
 * @param {{id: number, title: string, paraphrase: string, typo: string, facet: string,
 *   user?: string, stars?: number}} a `facet` is `category:VALUE` or `tags:VALUE`
 */
export async function viewerFindsOpensRates(page, server, a) {
  const user = a.user ?? 'vera';
  const stars = a.stars ?? 4;
  const href = `/article?id=${a.id}`;
  await page.goto(`${server.url}/`);
  await signIn(page, server, user);

  // By meaning: none of the words need to be in the article.
  assert.ok(server.semantic, 'the paraphrase step needs startServer({semantic: true})');
  await page.selectOption('#mode', 'semantic');
  await page.fill('#q', a.paraphrase);
  let status = await shown(page, { q: a.paraphrase, mode: 'semantic' });
  let links = await hitLinks(page);
  assert.ok(links.some((l) => l.href === href && l.title === a.title),
    `paraphrase "${a.paraphrase}" → ${status}: ${links.map((l) => l.title).join(' | ')}`);

  // By words, misspelt, in the default mode.
  await page.selectOption('#mode', { index: 0 });
  await page.fill('#q', a.typo);
  status = await shown(page, { q: a.typo });
  links = await hitLinks(page);
  assert.ok(links.some((l) => l.href === href), `typo "${a.typo}" → ${status}: ${links.map((l) => l.title).join(' | ')}`);

  // Its facet: the box lists a count; checking it keeps only that facet.
  const [field, value] = [a.facet.slice(0, a.facet.indexOf(':')), a.facet.slice(a.facet.indexOf(':') + 1)];
  const legend = field === 'tags' ? 'Tags' : 'Category';
  const box = page.locator('#facets fieldset', { has: page.locator(`legend:text-is("${legend}")`) })
    .locator('label', { hasText: new RegExp(`^\\s*${escapeRe(value)} \\(\\d+\\)$`) });
  const count = Number(/\((\d+)\)/.exec((await box.textContent()) ?? '')?.[1]);
  await box.locator('input').check();
  status = await shown(page, { q: a.typo, filters: [a.facet] });
  assert.match(status, new RegExp(`^${count} articles?`));
  links = await hitLinks(page);
  assert.ok(links.some((l) => l.href === href), `${a.facet}: ${links.map((l) => l.title).join(' | ')}`);
  if (field === 'category') {
    for (const meta of await page.locator('#hits .meta').allTextContents()) assert.ok(meta.startsWith(value), meta);
  }

  // Open it.
  await page.click(`#hits a[href="${href}"]`);
  await page.waitForURL(`**${href}`);
  await articleReady(page);
  assert.equal(await page.textContent('#title'), a.title);

  // Switch the reading level (both ways): the body comes and goes.
  const detailed = page.locator('input[name=level][value=detailed]');
  const summary = page.locator('input[name=level][value=summary]');
  const other = (await detailed.isChecked()) ? summary : detailed;
  await other.check();
  await page.waitForFunction((want) => document.getElementById('body-part')?.hidden === (want === 'summary'),
    await other.getAttribute('value'));
  assert.match(page.url(), /[?&]level=(summary|detailed)/);
  await detailed.check();
  await page.waitForSelector('#body-part:not([hidden])');
  assert.ok(((await page.textContent('#body')) ?? '').trim().length > 0, 'the detailed level shows the body');

  // Rate it.
  await page.click(`label[for=star-${stars}]`);
  await page.click('#rate-submit');
  await page.waitForFunction((n) => (document.getElementById('rate-status')?.textContent ?? '').includes(`rated it ${n} star`), stars);
  const r = await api(server, user, 'GET', `/v1/articles/${a.id}/rating`);
  assert.equal(r.body.your_stars, stars, JSON.stringify(r.body));
}
