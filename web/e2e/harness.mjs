// The browser tests' harness: a real `kmt demo` server on a loopback port
// with a fresh data directory, and Debian's chromium driven by
// playwright-core with a fresh user-data directory. Both are torn down by
// the caller (`stop()`), also when a test fails.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where screenshots go (gitignored). */
export const ARTIFACTS = process.env.KMT_TEST_ARTIFACTS ?? path.join(ROOT, 'test-artifacts');

/** The `kmt` binary: `KMT_BIN`, else the debug build in the cargo target dir. */
export function kmtBinary() {
  if (process.env.KMT_BIN) return process.env.KMT_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target');
  return path.resolve(ROOT, target, 'debug', 'kmt');
}

/**
 * @typedef {object} Server
 * @property {string} url base URL, no trailing slash
 * @property {Record<string, {password: string, token: string}>} accounts the demo accounts
 * @property {boolean} semantic whether semantic search is on (the model embedded the corpus)
 * @property {() => string} log what the server printed so far
 * @property {() => Promise<void>} stop
 */

/** The local embedding model's directory (`KMT_MODEL_DIR`, else where `make model` puts it). */
export function modelDir() {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache');
  return process.env.KMT_MODEL_DIR ?? path.join(cache, 'kmt', 'models', 'all-MiniLM-L6-v2');
}

/**
 * Starts `kmt demo` on a free port (`--port 0`, the printed URL says
 * which) with a temp data dir, and waits until `/readyz` answers 200.
 * The semantic model is off unless `semantic: true`: then the local model
 * (`modelDir()`, fetched by `make model`) must be present, and the server
 * is ready once every demo article is embedded.
 * @param {{timeoutMs?: number, semantic?: boolean}} [opts]
 * @returns {Promise<Server>}
 */
export async function startServer(opts = {}) {
  const bin = kmtBinary();
  if (!existsSync(bin)) {
    throw new Error(`no kmt binary at ${bin}: run \`cargo build -p kmt-api\` or set KMT_BIN`);
  }
  if (opts.semantic && !existsSync(path.join(modelDir(), 'model.safetensors'))) {
    throw new Error(`semantic search needs the model in ${modelDir()}: run \`make model\``);
  }
  const data = await mkdtemp(path.join(tmpdir(), 'kmt-e2e-data-'));
  const env = {
    ...process.env,
    KMT_EMBEDDER: opts.semantic ? 'local' : 'off',
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  if (opts.semantic) env.KMT_MODEL_DIR = modelDir();
  // The demo's own embedded store, never a database from the environment.
  for (const k of ['DATABASE_URL', 'KMT_LISTEN', 'KMT_PORT', 'KMT_DATA_DIR', 'KMT_INDEX_DIR']) delete env[k];
  const child = spawn(bin, ['demo', '--listen', '127.0.0.1:0', '--port', '0', '--data', data], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b) => { out += b; });
  child.stderr.on('data', (b) => { out += b; });
  const exited = new Promise((resolve) => child.once('exit', resolve));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(data, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + (opts.timeoutMs ?? (opts.semantic ? 240_000 : 60_000));
    let url;
    while (!url) {
      if (child.exitCode !== null) throw new Error(`kmt demo exited with ${child.exitCode}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`kmt demo printed no URL in time:\n${out}`);
      url = /KMT demo running at (http:\/\/\S+?)\/?\s/.exec(out)?.[1];
      if (!url) await sleep(100);
    }
    while (true) {
      if (Date.now() > deadline) throw new Error(`${url}/readyz never answered 200${opts.semantic ? ' with every article embedded' : ''}:\n${out}`);
      /** @type {any} */
      const ready = await fetch(`${url}/readyz`).then((r) => (r.ok ? r.json() : null), () => null);
      const sem = ready?.semantic;
      if (ready && (!opts.semantic || (sem?.status === 'on' && sem.synced && sem.queue === 0 && sem.articles > 0))) break;
      if (opts.semantic && sem?.status === 'off' && sem.reason) throw new Error(`semantic search is off: ${sem.reason}`);
      await sleep(200);
    }
    return { url, accounts: parseAccounts(out), semantic: !!opts.semantic, log: () => out, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * The demo accounts from the demo's banner (`name roles…` then
 * `password P  token T`).
 * @param {string} banner
 */
function parseAccounts(banner) {
  /** @type {Record<string, {password: string, token: string}>} */
  const accounts = {};
  const re = /^ {2}(\S+) .*\n\s+password (\S+)\s+token (\S+)/gm;
  for (const m of banner.matchAll(re)) accounts[m[1]] = { password: m[2], token: m[3] };
  return accounts;
}

// The machine's network is closed: background networking, QUIC, sync and
// component updates only produce refused connections.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];

/**
 * Launches Debian's chromium (`CHROMIUM`, default /usr/bin/chromium) with a
 * fresh user-data dir, headless.
 * @returns {Promise<{context: import('playwright-core').BrowserContext, stop: () => Promise<void>}>}
 */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`no chromium at ${executablePath}: run scripts/ensure-browser.sh`);
  }
  const profile = await mkdtemp(path.join(tmpdir(), 'kmt-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
  return {
    context,
    stop: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Launches Debian's chromium as a browser that makes separate contexts
 * (one per user: own cookies and storage), each with a fresh temporary
 * profile, headless.
 * @returns {Promise<{browser: import('playwright-core').Browser, stop: () => Promise<void>}>}
 */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`no chromium at ${executablePath}: run scripts/ensure-browser.sh`);
  }
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  return { browser, stop: async () => { await browser.close().catch(() => {}); } };
}

/**
 * Signs in through a page's header form (`#shell`) as a demo account;
 * the page reloads signed in.
 * @param {import('playwright-core').Page} page
 * @param {Server} server
 * @param {string} user
 */
export async function signInShell(page, server, user) {
  await page.fill('#username', user);
  await page.fill('#password', server.accounts[user].password);
  await Promise.all([
    page.waitForEvent('load'),
    page.click('#signin button[type=submit]'),
  ]);
  await page.waitForSelector('#who:not([hidden])');
}

/**
 * Screenshots of the page at desktop and phone width into ARTIFACTS, as
 * `<name>-desktop.png` and `<name>-phone.png`.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @returns {Promise<string[]>} the files written
 */
export async function screenshots(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const files = [];
  for (const [kind, size] of /** @type {const} */ ([['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]])) {
    await page.setViewportSize(size);
    const file = path.join(ARTIFACTS, `${name}-${kind}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return files;
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
