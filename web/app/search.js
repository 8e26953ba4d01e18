// The search page: results as you type, suggestions, facet filters with
// counts, the mode switch, did-you-mean, pages, and "ask for an article on
// this" when nothing is found. It talks to the API only through the client
// library; it has no inline script or style (the CSP forbids them). The
// words and mode are kept in the address (`?q=…&mode=…`), so the back
// button returns to the same results.
import { KmtError } from './kmt-client.js';
import { mountShell } from './shell.js';

/** @typedef {import('./kmt-types.js').SearchResults} SearchResults */

const PAGE = 10;
const FACETS = /** @type {const} */ (['category', 'tags']);

/** An element by id, typed by the caller. @template {HTMLElement} T @param {string} id @returns {T} */
const $ = (id) => /** @type {T} */ (document.getElementById(id));

const q = /** @type {HTMLInputElement} */ ($('q'));
const mode = /** @type {HTMLSelectElement} */ ($('mode'));
const sort = /** @type {HTMLSelectElement} */ ($('sort'));
const status = $('status'), hits = $('hits'), facets = $('facets'), pages = $('pages');
const shell = await mountShell({ current: '/' });
const kmt = shell.kmt;

/** What is searched: the words, chosen filters ("field:value"), page. */
const state = { filters: new Set(/** @type {string[]} */ ([])), offset: 0 };
/** @type {AbortController|undefined} */
let inflight;
/** The words of the results shown. */
let renderedQ = '';
/** @type {ReturnType<typeof setTimeout>|undefined} */
let typing;

async function run() {
  inflight?.abort();
  const ctl = (inflight = new AbortController());
  // What this request asks, stamped on the results when they are shown
  // (assistive technology and the browser tests wait on it).
  const asked = { q: q.value, mode: mode.value, sort: sort.value, offset: String(state.offset), filters: [...state.filters].join('|') };
  hits.setAttribute('aria-busy', 'true');
  let res;
  try {
    res = await kmt.search({
      q: q.value,
      filter: [...state.filters],
      facets: [...FACETS],
      mode: /** @type {any} */ (mode.value || undefined),
      sort: /** @type {any} */ (sort.value),
      limit: PAGE,
      offset: state.offset,
    }, { signal: ctl.signal });
  } catch (e) {
    if (e instanceof KmtError && e.kind === 'aborted') return;
    status.textContent = e instanceof KmtError ? `Search failed: ${e.detail}` : String(e);
    hits.replaceChildren();
    hits.removeAttribute('aria-busy');
    return;
  }
  render(res);
  remember();
  Object.assign(hits.dataset, asked);
  hits.removeAttribute('aria-busy');
}

/** @param {SearchResults} res */
function render(res) {
  const shown = res.hits.length;
  status.textContent = res.total === 0
    ? 'No articles found.'
    : `${res.total} article${res.total === 1 ? '' : 's'}` +
      (shown < res.total ? `, showing ${state.offset + 1}–${state.offset + shown}` : '') +
      (res.relaxed ? ' (matching any word)' : '') + ` · ${res.mode}`;
  $('empty').hidden = res.total !== 0 || !q.value.trim();
  if (q.value !== renderedQ) {
    // New words: they may be asked for (again the same words: keep the answer).
    renderedQ = q.value;
    $('ask-status').textContent = '';
    /** @type {HTMLButtonElement} */ ($('ask')).disabled = false;
  }
  const dym = $('dym');
  dym.hidden = !res.did_you_mean;
  $('dym-q').textContent = res.did_you_mean ?? '';
  hits.replaceChildren(...res.hits.map((h, i) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `/article?id=${h.id}`;
    a.textContent = h.title;
    a.addEventListener('click', () => {
      // Reported in the background; a failure must not stop the reader.
      kmt.events([{ kind: 'click', article_id: h.id, position: state.offset + i, search_id: res.search_id ?? null }])
        .catch(() => {});
    });
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = [h.category, h.tags.join(', '), h.status === 'published' ? '' : h.status]
      .filter(Boolean).join(' · ');
    const snip = document.createElement('p');
    snip.className = 'snippet';
    snip.innerHTML = h.snippet; // escaped by the server; only <mark> is markup
    plain(snip);
    li.append(a, meta, snip);
    return li;
  }));
  renderFacets(res);
  const pagesTotal = Math.ceil(res.total / PAGE);
  pages.hidden = pagesTotal <= 1;
  $('page').textContent = `Page ${Math.floor(state.offset / PAGE) + 1} of ${pagesTotal}`;
  /** @type {HTMLButtonElement} */ ($('prev')).disabled = state.offset === 0;
  /** @type {HTMLButtonElement} */ ($('next')).disabled = state.offset + PAGE >= res.total;
}

/**
 * Drops Markdown punctuation (`**`, `## `, backticks, table pipes) from a
 * snippet's text, which is cut from the article's Markdown source.
 * @param {HTMLElement} el
 */
function plain(el) {
  const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    n.textContent = (n.textContent ?? '').replace(/\*\*|__|`|(^|\s)#{1,6}\s|\s?\|\s?(?=\s|$)/g, ' ').replace(/\s{2,}/g, ' ');
  }
}

/** Facet groups as checkbox lists with counts; chosen ones stay listed. @param {SearchResults} res */
function renderFacets(res) {
  facets.replaceChildren(...FACETS.map((field) => {
    const counts = res.facets[field] ?? [];
    const fs = document.createElement('fieldset');
    const legend = document.createElement('legend');
    legend.textContent = field === 'tags' ? 'Tags' : 'Category';
    fs.append(legend);
    const values = new Map(counts.map((c) => [c.value, c.count]));
    for (const f of state.filters) {
      if (f.startsWith(`${field}:`) && !values.has(f.slice(field.length + 1))) values.set(f.slice(field.length + 1), 0);
    }
    for (const [value, count] of [...values].slice(0, 12)) {
      const key = `${field}:${value}`;
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = state.filters.has(key);
      box.addEventListener('change', () => {
        if (box.checked) state.filters.add(key); else state.filters.delete(key);
        state.offset = 0;
        run();
      });
      label.append(box, ` ${value} (${count})`);
      fs.append(label);
    }
    if (values.size === 0) fs.hidden = true;
    return fs;
  }));
}

async function suggest() {
  const text = q.value.trim();
  if (!text) return;
  try {
    const list = await kmt.suggest(text, { limit: 8 });
    $('suggestions').replaceChildren(...list.map((s) => {
      const o = document.createElement('option');
      o.value = s.text;
      return o;
    }));
  } catch {
    // Suggestions are a convenience: the search itself reports errors.
  }
}

/** Keeps the words and mode in the address bar (no new history entry per keystroke). */
function remember() {
  const u = new URL(location.href);
  u.search = '';
  if (q.value) u.searchParams.set('q', q.value);
  if (mode.value) u.searchParams.set('mode', mode.value);
  history.replaceState(null, '', u);
}

// "Ask for an article on this": an explicit request, counted in the
// writers' content gaps.
$('ask').addEventListener('click', async () => {
  const btn = /** @type {HTMLButtonElement} */ ($('ask'));
  const out = $('ask-status');
  if (!shell.me.username) {
    out.textContent = 'Sign in first (top of the page) to ask for an article.';
    /** @type {HTMLInputElement} */ ($('username')).focus();
    return;
  }
  btn.disabled = true;
  try {
    const r = await kmt.requestArticle(q.value);
    out.textContent = `Thank you: your request for "${r.query}" was sent to the writers` +
      (r.requests > 1 ? ` (${r.requests} people have asked).` : '.');
  } catch (e) {
    btn.disabled = false;
    out.textContent = `Could not send the request: ${e instanceof KmtError ? e.detail || e.message : e}`;
  }
});

shell.onChange(() => { $('ask-status').textContent = ''; state.offset = 0; run(); });
$('search').addEventListener('submit', (ev) => { ev.preventDefault(); state.offset = 0; run(); });
q.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => { state.offset = 0; run(); suggest(); }, 150);
});
for (const el of [mode, sort]) el.addEventListener('change', () => { state.offset = 0; run(); });
$('dym-q').addEventListener('click', () => { q.value = $('dym-q').textContent ?? ''; state.offset = 0; run(); });
$('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); run(); });
$('next').addEventListener('click', () => { state.offset += PAGE; run(); });

// On a phone the filters start folded, so the results come first.
if (matchMedia('(max-width: 40rem)').matches) /** @type {HTMLDetailsElement} */ ($('filters')).open = false;

const start = new URLSearchParams(location.search);
q.value = start.get('q') ?? '';
if (Array.from(mode.options).some((o) => o.value === start.get('mode'))) mode.value = start.get('mode') ?? '';
run();
