// Every page (pages.mjs) in a real browser: axe-core finds no serious or
// critical accessibility violation (WCAG 2.1 A/AA rules and best practice)
// at desktop or phone width, and screenshots of both widths are written
// to the test-artifacts folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { startServer, launchBrowser, screenshots } from './harness.mjs';
import { PAGES } from './pages.mjs';
import { api, signIn } from './flows/read.mjs';

const AXE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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

/** @param {string} slug */
async function idOf(slug) {
  const r = await api(server, 'admin', 'GET', `/v1/articles/${slug}`);
  assert.equal(r.status, 200, `${slug}: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/**
 * axe-core's serious and critical violations on the page as it is now.
 * The source is evaluated over the DevTools protocol, which the page's
 * content security policy (no inline script) does not govern.
 * @param {import('playwright-core').Page} page
 */
async function violations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE);
  /** @type {{id: string, impact: string, help: string, nodes: {target: string[], failureSummary: string}[]}[]} */
  const found = await page.evaluate(async () => {
    // @ts-ignore: injected above
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((/** @type {any} */ v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((/** @type {any} */ n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

for (const spec of PAGES) {
  test(`page ${spec.name}: no serious or critical accessibility violations; screenshots`, async () => {
    const page = await browser.context.newPage();
    /** @type {string[]} */
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.context().clearCookies();
    if (spec.user) {
      await page.goto(`${server.url}/`);
      await signIn(page, server, spec.user);
    }
    const path = typeof spec.path === 'function' ? await spec.path({ server, idOf }) : spec.path;
    await page.goto(`${server.url}${path}`);
    await page.waitForSelector(spec.ready, { state: 'attached', timeout: 15_000 });
    for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
      await page.setViewportSize(size);
      const bad = await violations(page);
      assert.deepEqual(bad, [], `${spec.name} at ${size.width}px:\n${JSON.stringify(bad, null, 2)}`);
    }
    const files = await screenshots(page, spec.name);
    assert.equal(files.length, 2);
    assert.deepEqual(errors, []);
    await page.close();
  });
}
