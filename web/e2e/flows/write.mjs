// The writing journey, as a reusable flow (the viewer's journey chains
// after it): an author writes an article that breaks its category's rule,
// sees the errors next to the fields, fixes them and submits; a reviewer
// sends it back with a note; the author sees the note and resubmits; the
// reviewer approves and it is published. Each user has their own browser
// context (own cookies). Assertions throw; screenshots go to ARTIFACTS.
import assert from 'node:assert/strict';

import { KmtClient } from '../../app/kmt-client.js';
import { signInShell, screenshots } from '../harness.mjs';

/** The category the flow writes in, and its rule (set up through the API). */
export const CATEGORY = 'travel-refunds';
export const RULE = { mandatory_fields: ['summary', 'tags'], min_lengths: { title: 12 } };

/**
 * @typedef {object} Written
 * @property {number} id
 * @property {string} title
 * @property {string} summary
 * @property {string} body the body as written (with its section block)
 * @property {string} category
 * @property {string[]} tags
 * @property {string} hiddenWord a word only in the reviewer-only section
 * @property {string} sectionId
 * @property {string} note the reviewer's rejection note
 */

/**
 * Records script errors of a page, for the caller to check.
 * @param {import('playwright-core').Page} page
 * @param {string[]} errors
 */
function watch(page, errors) {
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
}

/**
 * @param {import('playwright-core').Browser} browser
 * @param {import('../harness.mjs').Server} server
 * @param {{author?: string, reviewer?: string, screenshots?: boolean}} [opts]
 * @returns {Promise<Written>}
 */
export async function authorWritesAndGetsApproved(browser, server, opts = {}) {
  const author = opts.author ?? 'alice';
  const reviewer = opts.reviewer ?? 'rita';
  const admin = new KmtClient({ baseUrl: server.url, token: server.accounts.admin.token });
  await admin.saveRule(CATEGORY, RULE);

  const written = {
    title: 'Refunding a ferry ticket after a cancelled crossing',
    summary: '- Cancelled by the operator: full refund\n- Ask within **30 days**',
    tags: ['ferry', 'refunds'],
    category: CATEGORY,
    hiddenWord: 'zanzibarquota',
    sectionId: 'internal-notes',
    note: 'Name the refund form in step 2.',
  };
  const visibleBody = '## Steps\n\n1. Check the crossing was cancelled by the operator.\n2. Send the refund request.\n';
  /** @type {string[]} */
  const errors = [];

  const authorCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const reviewerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    // ---- the author writes, breaking the rule --------------------------
    const a = await authorCtx.newPage();
    watch(a, errors);
    await a.goto(`${server.url}/editor`);
    await signInShell(a, server, author);
    await a.waitForSelector('form#editor[data-ready]');
    await a.fill('#title', written.title);
    await a.selectOption('#category', CATEGORY);
    await a.waitForSelector(`form#editor[data-rules-for="${CATEGORY}"]`);
    // The category's mandatory fields are marked before anything is sent.
    assert.equal(await a.getAttribute('#summary', 'aria-required'), 'true');
    assert.equal(await a.getAttribute('#tags', 'aria-required'), 'true');
    assert.equal(await a.getAttribute('#body', 'aria-required'), null);
    assert.match((await a.textContent('#title-rule')) ?? '', /At least 12 characters/);
    await a.fill('#body', visibleBody);
    // A reviewer-only section, through the section helper.
    await a.focus('#body');
    await a.press('#body', 'Control+End');
    await a.selectOption('#sec-target', 'body');
    await a.fill('#sec-id', written.sectionId);
    await a.fill('#sec-audience', 'reviewer');
    await a.fill('#sec-title', 'Internal notes');
    await a.click('#sec-insert');
    // The section's placeholder text is selected in the body: type over it.
    await a.keyboard.type(`Quota code ${written.hiddenWord} for operator refunds.`);
    const body = await a.inputValue('#body');
    assert.match(body, new RegExp(`::: section id=${written.sectionId} audience=reviewer title="Internal notes"\\nQuota code ${written.hiddenWord} for operator refunds.\\n:::`));
    await a.waitForSelector('#preview .kmt-section[data-section="internal-notes"]');
    assert.match((await a.textContent('#preview .section-audience')) ?? '', /Shown to: reviewer/);

    await a.click('#submit');
    await a.waitForSelector('#error-summary:not([hidden])');
    for (const f of ['summary', 'tags']) {
      assert.match((await a.textContent(`#${f}-error`)) ?? '', /required in category travel-refunds/, f);
      assert.equal(await a.getAttribute(`#${f}`, 'aria-invalid'), 'true', f);
      assert.ok(((await a.getAttribute(`#${f}`, 'aria-describedby')) ?? '').split(' ').includes(`${f}-error`), f);
    }
    assert.equal(await a.getAttribute('#title', 'aria-invalid'), null, 'the title is long enough');
    // Focus moved to the summary of errors, which links to each field.
    assert.equal(await a.evaluate(() => document.activeElement?.id), 'error-summary');
    if (opts.screenshots !== false) await screenshots(a, 'editor-rule-errors');

    // ---- fixes and submits ---------------------------------------------
    await a.fill('#summary', written.summary);
    await a.fill('#tags', written.tags.join(', '));
    await a.click('#submit');
    await a.waitForSelector('form#editor[data-status="in_review"]');
    assert.match((await a.textContent('#status')) ?? '', /Submitted for review/);
    assert.equal(await a.isHidden('#error-summary'), true);
    assert.equal(await a.locator('[aria-invalid="true"]').count(), 0);
    const id = Number(await a.getAttribute('form#editor', 'data-article-id'));
    assert.ok(id > 0);
    assert.match(a.url(), new RegExp(`/editor\\?id=${id}$`));

    // ---- the reviewer sends it back with a note ------------------------
    const r = await reviewerCtx.newPage();
    watch(r, errors);
    await r.goto(`${server.url}/review`);
    await signInShell(r, server, reviewer);
    await r.waitForSelector('main[data-ready]');
    const card = r.locator(`#queue li[data-article="${id}"]`);
    assert.match((await card.locator('h3').textContent()) ?? '', new RegExp(`Review: ${written.title}`));
    await card.getByRole('button', { name: 'Open submission' }).click();
    await r.waitForSelector('#submission:not([hidden])');
    assert.match((await r.textContent('#submission-preview')) ?? '', /Send the refund request/);
    // The reviewer may see the reviewer-only section.
    assert.match((await r.textContent('#submission-preview')) ?? '', new RegExp(written.hiddenWord));
    // Sending back needs a note: the field says so.
    await r.click('#reject');
    assert.match((await r.textContent('#decision-note-error')) ?? '', /what the author should fix/);
    assert.equal(await r.getAttribute('#decision-note', 'aria-invalid'), 'true');
    await r.fill('#decision-note', written.note);
    if (opts.screenshots !== false) await screenshots(r, 'review-submission');
    await r.click('#reject');
    await r.waitForFunction(() => /Sent back to the author/.test(document.getElementById('status')?.textContent ?? ''));
    assert.equal(await r.locator(`#queue li[data-article="${id}"]`).count(), 0);

    // ---- the author sees the note and resubmits ------------------------
    await a.goto(`${server.url}/notifications`);
    await a.waitForSelector('main[data-ready]');
    const sentBack = a.locator('#inbox li[data-kind="rejected"]').first();
    assert.match((await sentBack.textContent()) ?? '', new RegExp(written.note.replace('.', '\\.')));
    await a.waitForSelector('#unread:not([hidden])');
    assert.match((await a.textContent('#unread')) ?? '', /^[1-9]\d*$/);
    if (opts.screenshots !== false) await screenshots(a, 'notifications');
    await sentBack.getByRole('link', { name: 'Edit the article' }).click();
    await a.waitForSelector('form#editor[data-ready]');
    assert.equal(await a.isVisible('#review-note'), true);
    assert.match((await a.textContent('#review-note')) ?? '', new RegExp(written.note.replace('.', '\\.')));
    assert.equal(await a.inputValue('#title'), written.title);
    const fixed = (await a.inputValue('#body')).replace('2. Send the refund request.', '2. Send the refund request on form FR-12.');
    await a.fill('#body', fixed);
    await a.click('#submit');
    await a.waitForSelector('form#editor[data-status="in_review"]');

    // ---- the reviewer approves -----------------------------------------
    await r.reload();
    await r.waitForSelector('main[data-ready]');
    await r.locator(`#queue li[data-article="${id}"]`).getByRole('button', { name: 'Open submission' }).click();
    await r.waitForSelector('#submission:not([hidden])');
    assert.match((await r.textContent('#submission-preview')) ?? '', /form FR-12/);
    await r.fill('#decision-note', 'Thanks, clear now.');
    await r.click('#approve');
    await r.waitForFunction(() => /Approved: .* is published/.test(document.getElementById('status')?.textContent ?? ''));

    const published = await admin.article(id, { level: 'detailed' });
    assert.equal(published.status, 'published');
    assert.equal(published.title, written.title);
    assert.deepEqual(published.tags, written.tags);
    assert.deepEqual(errors, []);
    return { id, ...written, body: fixed };
  } finally {
    await authorCtx.close().catch(() => {});
    await reviewerCtx.close().catch(() => {});
  }
}
