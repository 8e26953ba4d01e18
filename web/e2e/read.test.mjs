// The reader in a real browser against a real `kmt demo` with semantic
// search on: find an article by meaning and by a typo, filter, open,
// switch level, rate (flows/read.mjs); restricted articles and sections
// never show to a viewer without the role, anywhere in the UI, while a
// holder of the role sees them; and the whole reader path by keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, launchBrowser } from './harness.mjs';
import {
  api, publishArticle, waitFindable, signIn, shown, hitLinks, articleReady, viewerFindsOpensRates,
} from './flows/read.mjs';

/** @type {import('./harness.mjs').Server} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;

before(async () => {
  server = await startServer({ semantic: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.stop();
  await server?.stop();
});

/** A new page, signed out, that records script errors. */
async function newPage() {
  await browser.context.clearCookies();
  const page = await browser.context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

test('a viewer finds an article by a paraphrase and by a typo, filters by its facet, opens it, switches level and rates it', async () => {
  const t0 = Date.now();
  const title = 'Seizing and auctioning a delinquent taxpayer\'s motor vehicle';
  const a = await publishArticle(server, {
    title,
    category: 'collections',
    tags: ['vehicle-seizure', 'auction'],
    summary: '- Seize a car, truck or boat only after the final notice period has passed.\n- Sell it at public auction; apply the proceeds to the balance.',
    body: '## Steps\n\n1. Confirm the final demand notice went out 30 days ago.\n2. Ask the sheriff to tow the vehicle to the state lot.\n3. Publish the auction date ten days ahead.\n4. Apply the sale proceeds, then refund any surplus to the owner.',
  }, { user: 'vera', q: 'taking a car away from someone who owes taxes and selling it', mode: 'semantic' });
  console.log(`# published and findable by meaning after ${Date.now() - t0} ms`);
  const { page, errors } = await newPage();
  await viewerFindsOpensRates(page, server, {
    id: a.id,
    title,
    paraphrase: 'taking a car away from someone who owes taxes and selling it',
    typo: 'auctoin vehicle',
    facet: 'category:collections',
  });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a viewer without the role never sees a restricted article or a hidden section; a holder of the role does', async () => {
  // A restricted article, and a staff article with a restricted section;
  // both share a rare word so each is the other's related article.
  const secret = await publishArticle(server, {
    title: 'Zephyrquartz hearing docket rules',
    category: 'protests-and-appeals',
    tags: ['quillonbrisk'],
    audience: ['hearing_officer'],
    body: 'Quillonbrisk docket handling for zephyrquartz hearings, quillonbrisk hold periods and quillonbrisk notes.',
  }, { user: 'harry', q: 'zephyrquartz' });
  const open = await publishArticle(server, {
    title: 'Quillonbrisk protest intake',
    category: 'protests-and-appeals',
    tags: ['quillonbrisk'],
    summary: '- Quillonbrisk intake for every protest.',
    body: 'Quillonbrisk intake steps for protests and quillonbrisk hold periods.\n\n' +
      '::: section id=officer-notes audience=hearing_officer title="Obsidianflux officer notes"\n' +
      'Obsidianflux: settle before the hearing when the quillonbrisk record is thin.\n:::\n\nClosing words for all staff.',
  }, { user: 'vera', q: 'quillonbrisk' });
  await waitFindable(server, 'harry', 'obsidianflux', open.id, 'lexical');

  /**
   * What one reader sees, through the UI only.
   * @param {string} user
   */
  const look = async (user) => {
    const { page, errors } = await newPage();
    await page.goto(`${server.url}/`);
    await signIn(page, server, user);
    /** @type {Record<string, string>} */
    const seen = {};
    for (const q of ['zephyrquartz', 'obsidianflux', 'quillonbrisk']) {
      await page.fill('#q', q);
      const status = await shown(page, { q });
      seen[`search ${q}`] = `${status} ${(await hitLinks(page)).map((l) => `${l.title} ${l.href}`).join(' | ')} ` +
        `${await page.locator('#hits').innerText()} ${await page.locator('#facets').innerText()}`;
    }
    // Suggestions as the reader types a prefix of each secret word.
    for (const prefix of ['zephyrq', 'obsidianf']) {
      const answered = page.waitForResponse((r) => r.url().includes('/v1/suggest'));
      await page.fill('#q', prefix);
      await answered;
      await page.waitForTimeout(100);
      seen[`suggest ${prefix}`] = (await page.locator('#suggestions option').evaluateAll((os) => os.map((o) => o.getAttribute('value')))).join(' | ');
    }
    // The article pages, by direct address, at the detailed level.
    for (const [name, id] of [['secret', secret.id], ['open', open.id]]) {
      await page.goto(`${server.url}/article?id=${id}&level=detailed`);
      await articleReady(page);
      seen[`page ${name}`] = await page.locator('main').innerText();
      seen[`related ${name}`] = await page.locator('#related-box').innerText().catch(() => '');
    }
    assert.deepEqual(errors, [], `${user}: script errors`);
    await page.close();
    return seen;
  };

  const vera = await look('vera');
  const all = Object.values(vera).join('\n');
  for (const word of [/zephyrquartz/i, /obsidianflux/i, /officer notes/i, new RegExp(`id=${secret.id}\\b`)]) {
    assert.doesNotMatch(all, word, `vera sees ${word}: ${JSON.stringify(vera, null, 1)}`);
  }
  assert.match(vera['search zephyrquartz'], /^No articles found/);
  assert.match(vera['search quillonbrisk'], /Quillonbrisk protest intake/, 'the open article is found');
  assert.match(vera['page secret'], /does not exist, or you may not read it/);
  assert.match(vera['page open'], /Closing words for all staff/);

  // The positive control: the hearing officer sees both, everywhere.
  const harry = await look('harry');
  assert.match(harry['search zephyrquartz'], /Zephyrquartz hearing docket rules/);
  assert.match(harry['search obsidianflux'], /Quillonbrisk protest intake/);
  assert.match(harry['suggest zephyrq'], /zephyrquartz/i);
  assert.match(harry['page secret'], /Zephyrquartz hearing docket rules/);
  assert.match(harry['page open'], /Obsidianflux officer notes/);
  assert.match(harry['page open'], /Obsidianflux: settle before the hearing/);
  assert.match(harry['related open'], /Zephyrquartz hearing docket rules/);
});

test('keyboard only: search, open a result and rate it without a mouse', async () => {
  const { page, errors } = await newPage();
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#shell .bar');
  const kb = page.keyboard;
  /** The focused element's id. */
  const focused = () => page.evaluate(() => document.activeElement?.id ?? '');

  // Sign in from the header's form.
  for (let i = 0; i < 20 && (await focused()) !== 'username'; i++) await kb.press('Tab');
  assert.equal(await focused(), 'username');
  await kb.type('diana');
  await kb.press('Tab');
  await kb.type(server.accounts.diana.password);
  await kb.press('Enter');
  await page.waitForFunction(() => document.getElementById('who-name')?.textContent === 'Signed in as diana');
  assert.equal(await focused(), 'signout', 'focus stays in the header after signing in');

  // A fresh load: the skip link comes first and lands in the main region.
  await page.reload();
  await page.waitForFunction(() => document.getElementById('who-name')?.textContent === 'Signed in as diana');
  await kb.press('Tab');
  assert.equal(await focused(), 'skip');
  await kb.press('Enter');
  assert.equal(await focused(), 'main');
  // Next stop: the search box.
  await kb.press('Tab');
  assert.equal(await focused(), 'q');
  await kb.type('installment agreement');
  await shown(page, { q: 'installment agreement' });
  const first = (await hitLinks(page))[0];
  assert.ok(first, 'a result');

  // Tab to the first result (past the mode, sort and filter controls).
  for (let i = 0; i < 60; i++) {
    await kb.press('Tab');
    const href = await page.evaluate(() => document.activeElement?.getAttribute('href'));
    if (href === first.href) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('href')), first.href);
  await kb.press('Enter');
  await page.waitForURL(`**${first.href}`);
  await articleReady(page);

  // Tab to the star rating, choose 5 with the arrow keys, submit with Enter.
  for (let i = 0; i < 80; i++) {
    await kb.press('Tab');
    if ((await page.evaluate(() => document.activeElement?.getAttribute('name'))) === 'stars') break;
  }
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'stars');
  for (let i = 0; i < 5 && (await focused()) !== 'star-5'; i++) await kb.press('ArrowRight');
  assert.equal(await focused(), 'star-5', 'arrows move through the stars');
  await kb.press('Tab');
  assert.equal(await focused(), 'rate-submit');
  await kb.press('Enter');
  await page.waitForFunction(() => (document.getElementById('rate-status')?.textContent ?? '').includes('rated it 5 stars'));
  const id = new URL(page.url()).searchParams.get('id');
  const r = await api(server, 'diana', 'GET', `/v1/articles/${id}/rating`);
  assert.equal(r.body.your_stars, 5);
  assert.deepEqual(errors, []);
  await page.close();
});

test('an empty search offers "Ask for an article on this", which reaches the writers\' content gaps', async () => {
  const { page, errors } = await newPage();
  const q = 'Zorblax  quimbly festoons';
  await page.goto(`${server.url}/?q=${encodeURIComponent(q)}&mode=lexical`);
  assert.match(await shown(page, { q, mode: 'lexical' }), /^No articles found/);
  // Anonymous readers are asked to sign in first.
  await page.click('#ask');
  await page.waitForFunction(() => /Sign in first/.test(document.getElementById('ask-status')?.textContent ?? ''));
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'username');
  await signIn(page, server, 'vera');
  assert.match(await shown(page, { q, mode: 'lexical' }), /^No articles found/);
  await page.click('#ask');
  await page.waitForFunction(() => /Thank you/.test(document.getElementById('ask-status')?.textContent ?? ''));
  assert.match((await page.textContent('#ask-status')) ?? '', /"zorblax quimbly festoons" was sent to the writers/);
  assert.equal(await page.isDisabled('#ask'), true, 'asked once');
  const gaps = await api(server, 'alice', 'GET', '/v1/prompts/gaps');
  const gap = gaps.body.find((/** @type {any} */ g) => g.suggested_title === 'zorblax quimbly festoons');
  assert.ok(gap, JSON.stringify(gaps.body));
  assert.equal(gap.requests, 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('article page: version diff, helpful vote, feedback and send for update; the person asked sees the unread count', async () => {
  const a = await publishArticle(server, {
    title: 'Stamping returned mail',
    category: 'taxpayer-services',
    tags: ['mail'],
    summary: '- Stamp returned mail with the date received.',
    body: 'Stamp each returned envelope with the date received.',
  });
  const upd = await api(server, 'admin', 'PUT', `/v1/articles/${a.id}`, { body: 'Stamp each returned envelope with the date received and scan it.' });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));

  const { page, errors } = await newPage();
  await page.goto(`${server.url}/`);
  await signIn(page, server, 'diana');
  await page.goto(`${server.url}/article?id=${a.id}&level=detailed`);
  await articleReady(page);
  assert.match(await page.locator('#body').innerText(), /and scan it/);

  // History and the diff of the two versions.
  assert.equal(await page.locator('#versions tbody tr').count(), 2);
  await page.selectOption('#diff-from', '1');
  await page.selectOption('#diff-to', '2');
  await page.click('#diff-form button[type=submit]');
  await page.waitForSelector('#diff h3');
  assert.match(await page.locator('#diff del').allInnerTexts().then((t) => t.join('\n')), /^-Stamp each returned envelope with the date received\.$/m);
  assert.match(await page.locator('#diff ins').allInnerTexts().then((t) => t.join('\n')), /\+.*and scan it/);

  // The helpful vote is a pressed toggle.
  await page.click('#helpful-yes');
  await page.waitForSelector('#helpful-yes[aria-pressed="true"]');
  assert.match((await page.textContent('#rating-summary')) ?? '', /1 found it helpful/);

  // Feedback: an empty one is refused in the page, a real one is sent.
  await page.click('#feedback-form button[type=submit]');
  await page.fill('#feedback-text', 'Say which scanner to use.');
  await page.click('#feedback-form button[type=submit]');
  await page.waitForFunction(() => /Thank you/.test(document.getElementById('feedback-status')?.textContent ?? ''));

  // Send for update (diana may assign): to vera, with a note.
  assert.equal(await page.isVisible('#update-box'), true);
  await page.fill('#update-users', 'vera');
  await page.fill('#update-note', 'Name the scanner.');
  await page.click('#update-form button[type=submit]');
  await page.waitForFunction(() => /Sent: 1 update task opened/.test(document.getElementById('update-status')?.textContent ?? ''));
  // An unknown user is reported, not swallowed.
  await page.fill('#update-users', 'nobody-here');
  await page.click('#update-form button[type=submit]');
  await page.waitForFunction(() => /Sending for update/.test(document.getElementById('update-status')?.textContent ?? ''));
  await page.close();

  // Vera is told, and the header counts it.
  const v = await newPage();
  await v.page.goto(`${server.url}/`);
  await signIn(v.page, server, 'vera');
  await v.page.waitForSelector('#unread:not([hidden])');
  const n = Number(await v.page.textContent('#unread'));
  assert.ok(n >= 1, `unread ${n}`);
  assert.equal(await v.page.getAttribute('#nav-notifications', 'aria-label'), `Notifications, ${n} unread`);
  // Vera may not send for update.
  await v.page.goto(`${server.url}/article?id=${a.id}`);
  await articleReady(v.page);
  assert.equal(await v.page.isVisible('#update-box'), false);
  assert.deepEqual([...errors, ...v.errors], []);
  await v.page.close();
});
