// @ts-check
// The article page (`/article?id=ID[&level=summary|detailed]`): the text at
// the chosen level with the sections the reader may see (the API leaves
// the others out), metadata, rating, helpful vote, feedback, "send for
// update", related articles, version history and diffs. Markdown is
// rendered by markdown.js into DOM nodes, never through innerHTML.
import { KmtError } from './kmt-client.js';
import { mountShell, h } from './shell.js';
import { renderMarkdown } from './markdown.js';

/** @typedef {import('./kmt-types.js').ArticleView} ArticleView */
/** @typedef {import('./kmt-types.js').RatingSummary} RatingSummary */
/** @typedef {import('./kmt-types.js').Level} Level */

/** An element by id. @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

const shell = await mountShell();
const kmt = shell.kmt;
const params = new URLSearchParams(location.search);
const id = params.get('id') ?? '';
/** @type {Level|undefined} */
let level = params.get('level') === 'summary' || params.get('level') === 'detailed'
  ? /** @type {Level} */ (params.get('level')) : undefined;
/** @type {ArticleView|undefined} */
let article;

/** The level switch's radio buttons. @returns {HTMLInputElement[]} */
const levelRadios = () => Array.from(document.querySelectorAll('input[name=level]'));

/** Says what went wrong, in words a reader can act on. @param {unknown} e @param {string} what */
function explain(e, what) {
  if (!(e instanceof KmtError)) return `${what} failed: ${e}`;
  if (e.status === 404) return 'This article does not exist, or you may not read it.';
  if (e.status === 401) return `${what}: please sign in first.`;
  if (e.status === 403) return `${what}: you are not allowed to do this.`;
  if (e.status === 422) return `${what}: ${e.detail}`;
  if (e.kind === 'network' || e.kind === 'timeout') return `${what} failed: the server could not be reached. Try again.`;
  return `${what} failed: ${e.detail || e.message}`;
}

/** Shows a page-level error instead of the article. @param {string} text */
function fail(text) {
  $('status').textContent = '';
  $('content').hidden = true;
  $('error').hidden = false;
  $('error').replaceChildren(h('h1', {}, 'Article not available'), h('p', {}, text));
  document.title = 'Article not available — KMT';
}

async function load() {
  if (!/^\d+$/.test(id) && !/^[a-z0-9-]+$/.test(id)) {
    fail('No article was named: open an article from the search results.');
    return;
  }
  $('status').textContent = 'Loading the article…';
  delete $('content').dataset.ready;
  try {
    article = await kmt.article(id, { level });
  } catch (e) {
    fail(explain(e, 'Loading the article'));
    return;
  }
  $('error').hidden = true;
  render(article);
  $('content').hidden = false;
  $('status').textContent = '';
  document.title = `${article.title} — KMT`;
  // The rest loads side by side; each part reports its own trouble.
  await Promise.all([loadRating(), loadRelated(), loadVersions()]);
  $('content').dataset.ready = 'true';
}

/** @param {ArticleView} a */
function render(a) {
  $('title').textContent = a.title;
  /** @type {[string, string][]} */
  const meta = [
    ['Category', a.category],
    ['Tags', a.tags.join(', ') || '—'],
    ['Status', a.status.replace('_', ' ')],
    ['Owner', a.owner],
    ['Version', String(a.version)],
    ['Updated', day(a.updated_at)],
  ];
  if (a.review_due) meta.push(['Review due', day(a.review_due)]);
  $('meta').replaceChildren(...meta.map(([k, v]) => h('div', {}, h('dt', {}, k), ' ', h('dd', {}, v))));

  for (const r of levelRadios()) {
    r.checked = r.value === a.level;
  }
  $('level-default').hidden = !shell.me.username;
  $('summary').replaceChildren(renderMarkdown(a.summary));
  $('summary-part').hidden = a.summary.trim() === '';
  $('body').replaceChildren(renderMarkdown(a.body));
  $('body-part').hidden = a.level !== 'detailed' || a.body.trim() === '';
  // Section anchors and the list of sections shown at this level.
  for (const s of Array.from(/** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#article section.kmt-section')))) {
    if (s.dataset.section) s.id = `section-${s.dataset.section}`;
  }
  const shown = a.sections.filter((s) => a.level === 'detailed' || s.field === 'summary');
  $('toc').hidden = shown.length === 0;
  $('toc-list').replaceChildren(...shown.map((s) => h('li', {},
    h('a', { href: `#section-${s.id}` }, s.title || s.id),
    s.audience.length ? ` (shown to ${s.audience.join(', ')})` : '')));

  const signedIn = !!shell.me.username;
  $('rate-signin').hidden = signedIn;
  $('rate-form').hidden = !signedIn;
  $('helpful-box').hidden = !signedIn;
  $('feedback-box').hidden = !signedIn;
  $('update-box').hidden = !shell.can('article.assign');
  $('update-users').value = a.owner;
}

/** A date as the reader's locale writes it. @param {string} t */
const day = (t) => new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

async function loadRating() {
  try {
    showRating(await kmt.rating(id));
  } catch (e) {
    $('rating-summary').textContent = explain(e, 'Loading the ratings');
  }
}

/** @param {RatingSummary} r */
function showRating(r) {
  const avg = r.average == null ? 'No ratings yet' : `Rated ${r.average.toFixed(1)} of 5 (${r.ratings} rating${r.ratings === 1 ? '' : 's'})`;
  const votes = r.helpful + r.not_helpful > 0 ? ` · ${r.helpful} found it helpful, ${r.not_helpful} did not` : '';
  $('rating-summary').textContent = avg + votes + '.';
  if (r.your_stars) {
    const box = /** @type {HTMLInputElement|null} */ (document.getElementById(`star-${r.your_stars}`));
    if (box) box.checked = true;
  }
  $('helpful-yes').setAttribute('aria-pressed', String(r.your_helpful === true));
  $('helpful-no').setAttribute('aria-pressed', String(r.your_helpful === false));
}

async function loadRelated() {
  try {
    const related = await kmt.related(id, { limit: 5 });
    $('related').replaceChildren(...related.map((r) => h('li', {},
      h('a', { href: `/article?id=${r.id}` }, r.title), h('span', { className: 'meta' }, ` · ${r.category}`))));
    $('related-none').hidden = related.length > 0;
  } catch (e) {
    $('related').replaceChildren();
    $('related-none').hidden = false;
    $('related-none').textContent = explain(e, 'Loading related articles');
  }
}

async function loadVersions() {
  try {
    const versions = (await kmt.versions(id)).sort((a, b) => b.version - a.version);
    $('versions').tBodies[0].replaceChildren(...versions.map((v) => h('tr', {},
      h('td', {}, String(v.version)), h('td', {}, day(v.created_at)), h('td', {}, v.author),
      h('td', {}, v.status.replace('_', ' ')))));
    /** @param {HTMLSelectElement} sel @param {number|undefined} pick */
    const fill = (sel, pick) => {
      sel.replaceChildren(...versions.map((v) => h('option', { value: String(v.version), selected: v.version === pick }, `Version ${v.version}`)));
    };
    fill($('diff-from'), versions[1]?.version ?? versions[0]?.version);
    fill($('diff-to'), versions[0]?.version);
    $('diff-form').hidden = versions.length < 2;
  } catch (e) {
    $('versions').tBodies[0].replaceChildren(h('tr', {}, h('td', { colSpan: 4 }, explain(e, 'Loading the versions'))));
    $('diff-form').hidden = true;
  }
}

/** A unified diff as lines marked added / removed (the sign stays in the text). @param {string} unified */
function diffLines(unified) {
  return h('pre', { className: 'diff' }, ...unified.split('\n').map((line) => {
    const kind = line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : 'same';
    const tag = kind === 'add' ? 'ins' : kind === 'del' ? 'del' : 'span';
    return h(tag, { className: `diff-${kind}` }, `${line}\n`);
  }));
}

$('diff-form').addEventListener('submit', async (/** @type {SubmitEvent} */ ev) => {
  ev.preventDefault();
  const from = Number($('diff-from').value), to = Number($('diff-to').value);
  const out = $('diff');
  out.replaceChildren(h('p', {}, 'Comparing…'));
  try {
    const d = await kmt.diff(id, Math.min(from, to), Math.max(from, to));
    const changed = d.fields.filter((f) => f.unified.trim() !== '');
    out.replaceChildren(
      h('h3', {}, `Changes from version ${d.from} to ${d.to}`),
      ...(changed.length === 0 ? [h('p', {}, 'No differences.')] : changed.flatMap((f) => [h('h4', {}, f.field), diffLines(f.unified)])),
    );
  } catch (e) {
    out.replaceChildren(h('p', { className: 'error' }, explain(e, 'Comparing versions')));
  }
});

for (const r of levelRadios()) {
  r.addEventListener('change', async () => {
    if (!r.checked) return;
    level = /** @type {Level} */ (r.value);
    const u = new URL(location.href);
    u.searchParams.set('level', level);
    history.replaceState(null, '', u);
    try {
      article = await kmt.article(id, { level });
      render(article);
      shell.announce(level === 'summary' ? 'Showing the summary.' : 'Showing the detailed article.');
    } catch (e) {
      fail(explain(e, 'Loading the article'));
    }
  });
}

$('level-default').addEventListener('click', async () => {
  if (!level && !article) return;
  const want = level ?? article?.level;
  try {
    await kmt.setPreferences({ level: want });
    shell.announce(`${want === 'summary' ? 'Summary' : 'Detailed'} is now your default level.`);
  } catch (e) {
    shell.announce(explain(e, 'Saving your default level'));
  }
});

$('rate-form').addEventListener('submit', async (/** @type {SubmitEvent} */ ev) => {
  ev.preventDefault();
  const picked = /** @type {HTMLInputElement|null} */ (document.querySelector('input[name=stars]:checked'));
  const out = $('rate-status');
  if (!picked) {
    out.textContent = 'Choose 1 to 5 stars first.';
    /** @type {HTMLInputElement} */ ($('star-1')).focus();
    return;
  }
  try {
    showRating(await kmt.rate(id, Number(picked.value)));
    out.textContent = `Thank you: you rated it ${picked.value} star${picked.value === '1' ? '' : 's'}.`;
  } catch (e) {
    out.textContent = explain(e, 'Rating');
  }
});

for (const [btn, helpful] of /** @type {const} */ ([['helpful-yes', true], ['helpful-no', false]])) {
  $(btn).addEventListener('click', async () => {
    try {
      showRating(await kmt.helpful(id, helpful));
      $('rate-status').textContent = 'Thank you for your vote.';
    } catch (e) {
      $('rate-status').textContent = explain(e, 'Voting');
    }
  });
}

$('feedback-form').addEventListener('submit', async (/** @type {SubmitEvent} */ ev) => {
  ev.preventDefault();
  const text = $('feedback-text');
  const out = $('feedback-status');
  if (!text.value.trim()) { out.textContent = 'Write your feedback first.'; text.focus(); return; }
  try {
    await kmt.feedback(id, text.value);
    text.value = '';
    out.textContent = 'Thank you: the owner was asked to look at your feedback.';
  } catch (e) {
    out.textContent = explain(e, 'Sending feedback');
  }
});

$('update-form').addEventListener('submit', async (/** @type {SubmitEvent} */ ev) => {
  ev.preventDefault();
  /** @param {string} v */
  const names = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const users = names($('update-users').value), roles = names($('update-roles').value);
  const out = $('update-status');
  if (users.length + roles.length === 0) { out.textContent = 'Name at least one person or role.'; $('update-users').focus(); return; }
  try {
    const tasks = await kmt.requestUpdate(id, {
      users, roles, note: $('update-note').value.trim() || null, due_days: Number($('update-due').value) || 14,
    });
    out.textContent = `Sent: ${tasks.length} update task${tasks.length === 1 ? '' : 's'} opened.`;
    $('update-note').value = '';
  } catch (e) {
    out.textContent = explain(e, 'Sending for update');
  }
});

shell.onChange(() => load());
load();
