// @ts-check
// The editor (`/editor`, `/editor?id=ID`): Markdown with a live preview,
// the category's mandatory fields marked (from its rules), section blocks
// with their own audience, save draft and submit for review. Errors from
// the API (a 422 lists every rule broken, by field) are shown next to
// their fields and in a summary at the top.
import {
  kmt, startPage, needSignIn, byId, h, names, announce, describe,
  showFieldErrors, clearFieldErrors, errorsByField,
} from './page-common.js';
import { renderMarkdown } from './markdown.js';

/** @typedef {import('./kmt-types.js').ArticleView} ArticleView */
/** @typedef {import('./kmt-types.js').RuleSpec} RuleSpec */
/** @typedef {import('./kmt-types.js').NewArticle} NewArticle */

/** API field → control id. */
const CONTROLS = {
  title: 'title', category: 'category', summary: 'summary', body: 'body',
  tags: 'tags', audience: 'audience', review_due: 'review_due', slug: 'title',
};
/** Fields a rule may make mandatory or give a minimum length. */
const RULE_FIELDS = ['title', 'summary', 'body', 'tags', 'audience', 'review_due'];
/** Roles offered for audiences (anyone may type others, e.g. custom groups). */
const BUILT_IN = ['public', 'viewer', 'author', 'reviewer', 'director', 'admin'];

const main = byId('main');
const form = /** @type {HTMLFormElement} */ (byId('editor'));
const title = /** @type {HTMLInputElement} */ (byId('title'));
const category = /** @type {HTMLSelectElement} */ (byId('category'));
const summary = /** @type {HTMLTextAreaElement} */ (byId('summary'));
const body = /** @type {HTMLTextAreaElement} */ (byId('body'));
const tags = /** @type {HTMLInputElement} */ (byId('tags'));
const audience = /** @type {HTMLInputElement} */ (byId('audience'));
const reviewDue = /** @type {HTMLInputElement} */ (byId('review_due'));

/** The article being edited, once it exists. @type {ArticleView|null} */
let article = null;
/** @type {ReturnType<typeof setTimeout>|undefined} */
let previewTimer;
let busy = false;


async function init() {
  const params = new URLSearchParams(location.search);
  const id = params.get('id');
  await Promise.all([loadCategories(), loadRoles()]);
  if (id) {
    await load(id);
  } else {
    // A suggested article (from the dashboard's content gaps).
    title.value = params.get('title') ?? '';
    const c = params.get('category');
    if (c) { ensureCategory(c); category.value = c; }
    await markRules();
  }
  preview();
  for (const el of [title, summary, body]) el.addEventListener('input', schedulePreview);
  category.addEventListener('change', () => { markRules(); });
  form.addEventListener('submit', (ev) => { ev.preventDefault(); act(false); });
  byId('submit').addEventListener('click', () => act(true));
  byId('sec-insert').addEventListener('click', insertSection);
  form.dataset.ready = 'true';
  main.dataset.ready = 'true';
}

/** Categories with rules, and those articles use. */
async function loadCategories() {
  const seen = new Set();
  const [rules, facets] = await Promise.all([
    kmt.rules().catch(() => []),
    kmt.search({ facets: ['category'], limit: 1 }).then((r) => r.facets.category ?? [], () => []),
  ]);
  for (const r of rules) if (r.category !== '*') seen.add(r.category);
  for (const f of facets) seen.add(f.value);
  const list = [...seen].sort();
  category.replaceChildren(
    h('option', { attrs: { value: '' }, text: 'Choose a category' }),
    ...list.map((c) => h('option', { attrs: { value: c }, text: c })));
}

/** Offers known roles for audiences: built-in ones, the user's, and (for admins) every group. */
async function loadRoles() {
  const all = new Set([...BUILT_IN, ...(session?.roles ?? [])]);
  if (session?.roles.includes('admin')) {
    for (const r of await kmt.roles().catch(() => [])) all.add(r.name);
  }
  byId('known-roles').replaceChildren(...[...all].sort().map((r) => h('option', { attrs: { value: r } })));
}

/**
 * Loads an article: its draft (working copy) when it is published and has
 * one, else the article itself.
 * @param {string} id
 */
async function load(id) {
  try {
    article = await kmt.article(id, { level: 'detailed' });
  } catch (e) {
    announce(`Could not open article ${id}: ${describe(e)}`);
    return;
  }
  const a = article;
  /** @type {{title: string, summary: string, body: string, category: string, tags: string[], audience: string[], review_due?: string|null}} */
  let content = a;
  let note = null;
  if (isLive(a)) {
    const wc = await kmt.draft(a.id).catch(() => null);
    if (wc) { content = wc; note = wc.note ?? null; }
  }
  if (!note && a.status === 'draft') note = await lastRejection(a.id);
  title.value = content.title;
  ensureCategory(content.category);
  category.value = content.category;
  summary.value = content.summary;
  body.value = content.body;
  tags.value = content.tags.join(', ');
  audience.value = content.audience.join(', ');
  reviewDue.value = content.review_due ? content.review_due.slice(0, 10) : '';
  byId('editor-heading').textContent = `Edit “${a.title}”`;
  document.title = `KMT — edit ${a.title}`;
  const reviewNote = byId('review-note');
  reviewNote.hidden = !note;
  reviewNote.textContent = note ? `The reviewer sent this back: ${note}` : '';
  showState();
  await markRules();
}

/** The reviewer's note of the newest rejection of an article, from the caller's notifications. @param {number} id */
async function lastRejection(id) {
  try {
    const inbox = await kmt.notifications({ limit: 100 });
    const n = inbox.items.find((x) => x.article_id === id && x.kind === 'rejected');
    if (!n) return null;
    const m = /was sent back: ([\s\S]*)$/.exec(n.message);
    return m ? m[1] : n.message;
  } catch {
    return null;
  }
}

/** @param {string} c */
function ensureCategory(c) {
  if (c && !Array.from(category.options).some((o) => o.value === c)) category.append(h('option', { attrs: { value: c }, text: c }));
}

/** @param {{status: string}} a */
const isLive = (a) => a.status === 'published' || a.status === 'needs_update';

function showState() {
  if (!article) return;
  const s = article.status.replace('_', ' ');
  announce(`Article ${article.id} is ${s}${isLive(article) ? ' (changes are saved as a draft; the published version stays live until approved)' : ''}.`);
  form.dataset.status = article.status;
  form.dataset.articleId = String(article.id);
}

/** Marks the fields the chosen category's rules require, and minimum lengths. */
async function markRules() {
  /** @type {RuleSpec} */
  let spec = {};
  const cat = category.value;
  if (cat) spec = await kmt.rule(cat).catch(() => ({}));
  const required = new Set(spec.mandatory_fields ?? []);
  for (const f of RULE_FIELDS) {
    const control = byId(CONTROLS[/** @type {keyof typeof CONTROLS} */ (f)]);
    const mark = form.querySelector(`.req[data-for="${f}"]`);
    const req = required.has(f) || f === 'title';
    if (mark) {
      mark.replaceChildren(...(req ? [h('span', { attrs: { 'aria-hidden': 'true' }, text: '*' }), h('span', { class: 'visually-hidden', text: '(required)' })] : []));
    }
    if (req) control.setAttribute('aria-required', 'true'); else control.removeAttribute('aria-required');
    control.closest('.field')?.classList.toggle('required', req);
    const min = spec.min_lengths?.[f];
    const ruleId = `${f}-rule`;
    let rule = document.getElementById(ruleId);
    const text = [
      required.has(f) ? `Required in category ${cat}.` : '',
      min ? `At least ${min} characters.` : '',
    ].filter(Boolean).join(' ');
    if (!rule) {
      rule = h('p', { class: 'hint rule-hint', attrs: { id: ruleId } });
      (document.getElementById(`${CONTROLS[/** @type {keyof typeof CONTROLS} */ (f)]}-hint`) ?? control).insertAdjacentElement('afterend', rule);
      const d = (control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
      control.setAttribute('aria-describedby', [...d, ruleId].join(' '));
    }
    rule.textContent = text;
  }
  form.dataset.rulesFor = cat;
}

/** @returns {NewArticle} */
function values() {
  return {
    title: title.value.trim(),
    category: category.value,
    summary: summary.value,
    body: body.value,
    tags: names(tags.value),
    audience: names(audience.value),
    review_due: reviewDue.value ? `${reviewDue.value}T00:00:00Z` : null,
  };
}

/** Checks what the API would refuse anyway, with friendlier words. @returns {Record<string, string[]>} */
function localErrors() {
  /** @type {Record<string, string[]>} */
  const out = {};
  if (!title.value.trim()) out.title = ['Give the article a title.'];
  if (!category.value) out.category = ['Choose a category.'];
  return out;
}

/**
 * Saves (creates the article, updates a draft in place, or saves the
 * draft of a published article), then submits it when asked.
 * @param {boolean} andSubmit
 */
async function act(andSubmit) {
  if (busy) return;
  busy = true;
  clearErrors();
  const local = localErrors();
  if (Object.keys(local).length) {
    showErrors(local);
    busy = false;
    return;
  }
  form.setAttribute('aria-busy', 'true');
  try {
    const v = values();
    if (!article) {
      const created = await kmt.createArticle(v);
      history.replaceState(null, '', `/editor?id=${created.id}`);
      article = await kmt.article(created.id, { level: 'detailed' });
    } else if (isLive(article)) {
      await kmt.saveDraft(article.id, v);
    } else {
      await kmt.updateArticle(article.id, v);
      article = await kmt.article(article.id, { level: 'detailed' });
    }
    byId('editor-heading').textContent = `Edit “${article.title}”`;
    if (!andSubmit) {
      showState();
      announce(`Draft saved (article ${article.id}).`);
      return;
    }
    const task = await kmt.submit(article.id);
    article = await kmt.article(article.id, { level: 'detailed' });
    showState();
    byId('review-note').hidden = true;
    announce(`Submitted for review: task ${task.id} went to ${task.assignee_role ?? task.assignee_user ?? 'the reviewers'}. Article ${article.id} is ${article.status.replace('_', ' ')}.`);
  } catch (e) {
    showErrors(errorsByField(e), andSubmit ? 'submit' : 'save');
  } finally {
    form.removeAttribute('aria-busy');
    busy = false;
  }
}

function clearErrors() {
  clearFieldErrors(form);
  byId('error-summary').hidden = true;
  byId('error-list').replaceChildren();
}

/**
 * Messages next to their fields, and all of them in the summary (links
 * move focus to the field).
 * @param {Record<string, string[]>} byField
 * @param {'save'|'submit'} [what]
 */
function showErrors(byField, what = 'save') {
  const rest = showFieldErrors(byField, CONTROLS);
  const items = Object.entries(byField).map(([field, messages]) => {
    const id = CONTROLS[/** @type {keyof typeof CONTROLS} */ (field.replace(/[.[].*$/, ''))];
    const text = `${field ? `${labelOf(field)}: ` : ''}${messages.join('; ')}`;
    if (!id || rest.some(([f]) => f === field)) return h('li', { text });
    return h('li', {}, h('a', { attrs: { href: `#${id}` }, text, on: { click: (/** @type {Event} */ ev) => { ev.preventDefault(); byId(id).focus(); } } }));
  });
  byId('error-list').replaceChildren(...items);
  const box = byId('error-summary');
  box.querySelector('h2')?.replaceChildren(what === 'submit'
    ? 'The article cannot be submitted yet'
    : 'The article could not be saved');
  box.hidden = false;
  box.focus();
  announce(`${items.length} problem${items.length === 1 ? '' : 's'} to fix.`);
}

/** A field's label text, without the "required" marks. @param {string} field */
function labelOf(field) {
  const id = CONTROLS[/** @type {keyof typeof CONTROLS} */ (field.replace(/[.[].*$/, ''))];
  const label = id ? form.querySelector(`label[for="${id}"]`) : null;
  const text = label?.firstChild?.textContent?.trim();
  return text ? text.replace(/\s*\(.*$/, '') : field;
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 120);
}

/** Renders the title, summary and body (safely: DOM nodes, no HTML strings). */
function preview() {
  const out = byId('preview');
  out.replaceChildren(
    h('h3', { text: title.value.trim() || 'Untitled' }),
    h('h3', { class: 'level', text: 'Summary' }),
    h('div', {}, renderMarkdown(summary.value)),
    h('h3', { class: 'level', text: 'Details' }),
    h('div', {}, renderMarkdown(body.value)));
}

/** Inserts a section block at the cursor of the chosen field (around any selection). */
function insertSection() {
  const target = /** @type {HTMLTextAreaElement} */ (byId(/** @type {HTMLSelectElement} */ (byId('sec-target')).value));
  const idInput = /** @type {HTMLInputElement} */ (byId('sec-id'));
  const id = idInput.value.trim();
  const aud = names(/** @type {HTMLInputElement} */ (byId('sec-audience')).value);
  const stitle = /** @type {HTMLInputElement} */ (byId('sec-title')).value.trim().replace(/"/g, '\u201d');
  clearFieldErrors(byId('sec-insert').parentElement ?? form);
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id)) {
    showFieldErrors({ 'sec-id': ['Give the section an id of lower-case letters, digits, - and _.'] }, { 'sec-id': 'sec-id' });
    idInput.focus();
    return;
  }
  const selected = target.value.slice(target.selectionStart, target.selectionEnd);
  const before = target.value.slice(0, target.selectionStart);
  const opener = `::: section id=${id}${aud.length ? ` audience=${aud.join(',')}` : ''}${stitle ? ` title="${stitle}"` : ''}`;
  const inner = selected || 'Text of the section.';
  const block = `${before && !before.endsWith('\n') ? '\n' : ''}${opener}\n${inner}\n:::\n`;
  const start = target.selectionStart;
  target.setRangeText(block, target.selectionStart, target.selectionEnd, 'end');
  // Select the section's text, ready to be typed over.
  const innerStart = start + block.indexOf(`\n${inner}\n`) + 1;
  target.focus();
  target.setSelectionRange(innerStart, innerStart + inner.length);
  preview();
  announce(`Section ${id} inserted into the ${target.id}.`);
}

// Started last: everything above is defined by then.
const session = await startPage('editor');
if (!session) {
  needSignIn(main, 'Write an article');
} else {
  await init();
}
