// Administration in a real browser: an admin creates a category rule with
// an escalation path (a mistake in the path is shown next to its field),
// edits it, creates a group and a user — each checked through the API.
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

test('an admin creates and edits a rule with an escalation path, a group and a user', async () => {
  const api = new KmtClient({ baseUrl: server.url, token: server.accounts.admin.token });
  const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/admin`);
  await signInShell(page, server, 'admin');
  await page.waitForSelector('main[data-ready]');
  assert.ok(await page.locator('#users tbody tr[data-user="vera"]').count(), 'users listed');
  assert.ok(await page.locator('#roles tbody tr[data-role="reviewer"]').count(), 'roles listed');

  // A rule with an escalation path whose second step comes too early.
  await page.fill('#rule-category', 'benefits');
  await page.check('#mf-tags');
  await page.check('#mf-summary');
  await page.fill('#min-body', '40');
  await page.fill('#rule-interval', '90');
  await page.fill('#rule-approver', 'reviewer');
  await page.click('#add-step');
  await page.fill('#step-0-after', '24');
  await page.fill('#step-0-role', 'director');
  await page.click('#add-step');
  await page.fill('#step-1-after', '12');
  await page.fill('#step-1-user', 'admin');
  await page.click('#save-rule');
  await page.waitForSelector('#step-1-after-error');
  assert.match((await page.textContent('#step-1-after-error')) ?? '', /later than the one before/);
  assert.equal(await page.getAttribute('#step-1-after', 'aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'step-1-after');
  assert.equal(await api.rules().then((rs) => rs.some((r) => r.category === 'benefits')), false, 'nothing saved');

  await page.fill('#step-1-after', '48');
  await page.click('#save-rule');
  await page.waitForSelector('#rule[data-saved="benefits@1"]');
  assert.equal(await page.locator('#rule [aria-invalid="true"]').count(), 0);
  let spec = await api.rule('benefits');
  assert.deepEqual([...(spec.mandatory_fields ?? [])].sort(), ['summary', 'tags']);
  assert.deepEqual(spec.min_lengths, { body: 40 });
  assert.equal(spec.review_interval_days, 90);
  assert.equal(spec.approver_role, 'reviewer');
  assert.deepEqual(spec.escalation?.map((s) => [s.after_hours, s.to_role ?? null, s.to_user ?? null]),
    [[24, 'director', null], [48, null, 'admin']]);
  const row = page.locator('#rules tbody tr[data-category="benefits"]');
  assert.match((await row.textContent()) ?? '', /after 24 h → role director/);

  // Edit it: a third step, and no minimum length.
  await row.getByRole('button', { name: 'Edit the rules of benefits' }).click();
  assert.equal(await page.inputValue('#rule-category'), 'benefits');
  assert.equal(await page.inputValue('#step-1-user'), 'admin');
  await page.fill('#min-body', '');
  await page.click('#add-step');
  await page.fill('#step-2-after', '96');
  await page.fill('#step-2-role', 'admin');
  await page.click('#save-rule');
  await page.waitForSelector('#rule[data-saved="benefits@2"]');
  spec = await api.rule('benefits');
  assert.deepEqual(spec.min_lengths ?? {}, {});
  assert.deepEqual(spec.escalation?.map((s) => s.after_hours), [24, 48, 96]);
  assert.equal((await api.ruleHistory('benefits')).length, 2);

  // A group, then a user in it.
  await page.fill('#group-name', 'field-office');
  await page.fill('#group-description', 'Staff in the field offices');
  await page.click('#new-group button[type=submit]');
  await page.waitForSelector('#roles tbody tr[data-role="field-office"]');
  await page.fill('#new-username', 'fiona');
  await page.fill('#new-display', 'Fiona Field');
  await page.fill('#new-roles', 'viewer, field-office');
  await page.fill('#new-password', 'a-long-enough-password-1');
  await page.click('#new-user button[type=submit]');
  await page.waitForSelector('#users tbody tr[data-user="fiona"]');
  const fiona = (await api.users()).find((u) => u.username === 'fiona');
  assert.deepEqual(fiona?.roles.sort(), ['field-office', 'viewer']);
  const fionaClient = new KmtClient({ baseUrl: server.url });
  // (node's fetch keeps no cookies: the sign-in answer is enough to check the password)
  assert.equal((await fionaClient.signIn('fiona', 'a-long-enough-password-1')).username, 'fiona');

  // Set a user's roles in the table.
  const vera = page.locator('#users tbody tr[data-user="vera"]');
  await vera.locator('input').fill('viewer, field-office');
  await vera.getByRole('button', { name: 'Save roles' }).click();
  await page.waitForFunction(() => /vera now has/.test(document.getElementById('status')?.textContent ?? ''));
  assert.deepEqual((await api.users()).find((u) => u.username === 'vera')?.roles.sort(), ['field-office', 'viewer']);

  await screenshots(page, 'admin');
  assert.deepEqual(errors, []);
  await ctx.close();
});
