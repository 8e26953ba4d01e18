// @ts-check
// The review queue and task list (`/review`): the caller's open tasks
// (their roles' and their own); a review task opens the submission — what
// it changes (a line diff against the published version, or against the
// previous version) and a preview — to approve or send back with a note.
import {
  kmt, startPage, needSignIn, byId, h, announce, describe, when, refreshUnread,
  showFieldErrors, clearFieldErrors, errorsByField,
} from './page-common.js';
import { renderMarkdown } from './markdown.js';
import { lineDiff } from './diff.js';

/** @typedef {import('./kmt-types.js').Task} Task */
/** @typedef {import('./kmt-types.js').ArticleView} ArticleView */

const main = byId('main');
const note = /** @type {HTMLTextAreaElement} */ (byId('decision-note'));
const showDone = /** @type {HTMLInputElement} */ (byId('show-done'));
/** The review task whose submission is open. @type {Task|null} */
let open = null;
/** Titles of articles by id, as far as known. @type {Map<number, string>} */
const titles = new Map();

const session = await startPage('review');
if (!session) {
  needSignIn(main, 'Review queue and tasks');
} else {
  showDone.addEventListener('change', () => { list(); });
  byId('approve').addEventListener('click', () => decide('approve'));
  byId('reject').addEventListener('click', () => decide('reject'));
  await list();
  main.dataset.ready = 'true';
}

/** Lists the caller's tasks: reviews first, then updates. */
async function list() {
  const queue = byId('queue'), tasks = byId('tasks');
  queue.setAttribute('aria-busy', 'true');
  let all;
  try {
    all = await kmt.tasks({ includeDone: showDone.checked });
  } catch (e) {
    announce(`Could not load your tasks: ${describe(e)}`);
    queue.removeAttribute('aria-busy');
    return;
  }
  await Promise.all([...new Set(all.map((t) => t.article_id))].filter((id) => !titles.has(id))
    .map((id) => kmt.article(id, { level: 'summary' }).then((a) => { titles.set(id, a.title); }, () => {})));
  const reviews = all.filter((t) => t.kind === 'review');
  const updates = all.filter((t) => t.kind !== 'review');
  queue.replaceChildren(...reviews.map(card));
  tasks.replaceChildren(...updates.map(card));
  byId('queue-empty').hidden = reviews.length > 0;
  byId('tasks-empty').hidden = updates.length > 0;
  queue.removeAttribute('aria-busy');
  const openReviews = reviews.filter((t) => t.status === 'open').length;
  announce(`${openReviews} submission${openReviews === 1 ? '' : 's'} to review, ${updates.filter((t) => t.status === 'open').length} update task(s).`);
}

/** @param {Task} t */
function card(t) {
  const name = titles.get(t.article_id) ?? `Article ${t.article_id}`;
  const who = t.assignee_user ? `you (${t.assignee_user})` : `role ${t.assignee_role}`;
  const headingId = `task-${t.id}-title`;
  const li = h('li', { attrs: { 'data-task': t.id, 'data-article': t.article_id, 'aria-labelledby': headingId } },
    h('h3', { attrs: { id: headingId }, text: `${t.kind === 'review' ? 'Review' : 'Update'}: ${name}` }),
    h('p', { class: 'meta', text: [
      `Task ${t.id}`, `for ${who}`, `from ${t.created_by}`, `opened ${when(t.created_at)}`,
      t.due_at ? `due ${when(t.due_at)}` : '', t.status === 'open' ? 'open' : `closed by ${t.closed_by ?? '?'}`,
    ].filter(Boolean).join(' · ') }),
    t.note ? h('p', { class: 'note', text: `Note: ${t.note}` }) : null);
  if (t.status === 'open' && t.kind === 'review') {
    li.append(h('button', {
      attrs: { type: 'button', 'aria-controls': 'submission', 'aria-describedby': headingId },
      text: 'Open submission',
      on: { click: () => openSubmission(t) },
    }));
  } else if (t.status === 'open') {
    li.append(h('a', { attrs: { href: `/editor?id=${t.article_id}`, 'aria-describedby': headingId }, text: 'Edit the article' }));
  }
  return li;
}

/** Shows a submission: its changes and a preview. @param {Task} t */
async function openSubmission(t) {
  const panel = byId('submission');
  let a;
  try {
    a = await kmt.article(t.article_id, { level: 'detailed' });
  } catch (e) {
    announce(`Could not open article ${t.article_id}: ${describe(e)}`);
    return;
  }
  open = t;
  const wc = a.status === 'published' || a.status === 'needs_update'
    ? await kmt.draft(a.id).catch(() => null)
    : null;
  /** @type {{title: string, summary: string, body: string, category: string, tags: string[], audience: string[]}} */
  const shown = wc ?? a;
  byId('submission-heading').textContent = `Submission: ${shown.title}`;
  byId('submission-meta').textContent = [
    `Article ${a.id}`, `by ${wc?.author ?? a.owner}`, `category ${shown.category}`,
    shown.tags.length ? `tags ${shown.tags.join(', ')}` : 'no tags',
    `audience ${shown.audience.length ? shown.audience.join(', ') : 'every signed-in user'}`,
  ].join(' · ');
  byId('changes').replaceChildren(await changes(a, wc));
  byId('submission-preview').replaceChildren(
    h('h4', { text: 'Summary' }), h('div', {}, renderMarkdown(shown.summary)),
    h('h4', { text: 'Details' }), h('div', {}, renderMarkdown(shown.body)));
  note.value = '';
  clearFieldErrors(byId('decision'));
  panel.hidden = false;
  panel.dataset.task = String(t.id);
  byId('submission-heading').focus();
}

/**
 * What the submission changes: its draft against the live version, else
 * the server's diff of the last two versions, else "a new article".
 * @param {ArticleView} a
 * @param {import('./kmt-types.js').WorkingCopy|null} wc
 * @returns {Promise<Node>}
 */
async function changes(a, wc) {
  if (wc) {
    const parts = /** @type {const} */ (['title', 'summary', 'body']).map((f) => {
      const d = lineDiff(a[f], wc[f]);
      if (!d.some((x) => x.op !== ' ')) return null;
      return [f, d.map((x) => ({ cls: x.op === '+' ? 'add' : x.op === '-' ? 'del' : 'same', text: `${x.op} ${x.line}` }))];
    }).filter((x) => x !== null);
    return diffView(/** @type {[string, {cls: string, text: string}[]][]} */ (parts), 'Changes to the published version');
  }
  const versions = await kmt.versions(a.id).catch(() => []);
  if (versions.length < 2) return h('p', { text: 'A new article: everything is new.' });
  const [from, to] = versions.slice(-2).map((v) => v.version);
  try {
    const d = await kmt.diff(a.id, from, to);
    return diffView(d.fields.map((f) => [f.field, f.unified.split('\n').filter((l) => l && !l.startsWith('---') && !l.startsWith('+++'))
      .map((l) => ({ cls: l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'same', text: l }))]),
    `Changes from version ${from} to ${to}`);
  } catch (e) {
    return h('p', { text: `The changes could not be shown: ${describe(e)}` });
  }
}

/**
 * @param {[string, {cls: string, text: string}[]][]} fields
 * @param {string} caption
 */
function diffView(fields, caption) {
  if (!fields.length) return h('p', { text: `${caption}: none.` });
  return h('div', { attrs: { id: 'diff' } }, h('p', { text: `${caption}. Lines starting with + are added, with - removed.` }),
    ...fields.map(([field, lines]) => h('div', {},
      h('h4', { text: field }),
      h('pre', { class: 'diff' }, ...lines.map((l) => h('span', { class: l.cls, text: l.text }))))));
}

/** Approves or sends back the open submission. @param {'approve'|'reject'} what */
async function decide(what) {
  if (!open) return;
  clearFieldErrors(byId('decision'));
  const text = note.value.trim();
  if (what === 'reject' && !text) {
    showFieldErrors({ note: ['Say what the author should fix before sending it back.'] }, { note: 'decision-note' });
    note.focus();
    return;
  }
  const t = open;
  try {
    const a = what === 'approve'
      ? await kmt.approveTask(t.id, text || undefined)
      : await kmt.rejectTask(t.id, text);
    open = null;
    byId('submission').hidden = true;
    await list();
    announce(what === 'approve'
      ? `Approved: “${a.title}” is ${a.status}.`
      : `Sent back to the author: “${a.title}” is ${a.status}.`);
    byId('queue-heading').focus();
    refreshUnread();
  } catch (e) {
    const rest = showFieldErrors(errorsByField(e), { note: 'decision-note' });
    if (rest.length) announce(rest.map(([, m]) => m.join('; ')).join(' '));
  }
}
