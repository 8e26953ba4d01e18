// @ts-check
/**
 * @file What the writer, reviewer and admin pages share: one client, the
 * header (`<header id="shell">`: navigation, sign-in, the unread
 * notification count), and small DOM helpers. Text always goes in through
 * `textContent`, never `innerHTML` (the CSP forbids inline script; this
 * keeps untrusted text from becoming markup).
 *
 * Contract for a page: `const session = await startPage('editor')`, then
 * render into `<main id="main">`. `session` is `null` when nobody is
 * signed in (the header shows the sign-in form; signing in reloads the
 * page). Pages only use `startPage`, `refreshUnread`, `kmt` and the helpers.
 */
import { KmtClient, KmtError } from './kmt-client.js';
import { mountShell } from './shell.js';

/** @typedef {import('./kmt-types.js').SessionInfo} SessionInfo */
/** @typedef {import('./shell.js').Shell} Shell */

/** The one client of the page (cookie session, CSRF on writes). */
export const kmt = new KmtClient();

/** @type {const} */ ([
  ['search', '/', 'Search'],
  ['editor', '/editor', 'Write'],
  ['review', '/review', 'Review'],
  ['notifications', '/notifications', 'Notifications'],
  ['admin', '/admin', 'Administration'],
  ['dashboard', '/dashboard', 'Dashboard'],
]);

/**
 * An element by id, typed by the caller.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`no element #${id}`);
  return /** @type {T} */ (e);
}

/**
 * @typedef {object} Props
 * @property {string} [class]
 * @property {string} [text] text content
 * @property {Record<string, string|number|boolean|undefined|null>} [attrs] attributes (false/null/undefined: left out)
 * @property {Record<string, (ev: any) => void>} [on] event listeners
 */

/**
 * Creates an element with text, attributes, listeners and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  if (props.class) e.className = props.class;
  if (props.text !== undefined) e.textContent = props.text;
  for (const [k, v] of Object.entries(props.attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const [k, f] of Object.entries(props.on ?? {})) e.addEventListener(k, f);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/**
 * A message for a failed call, for people.
 * @param {unknown} e
 * @returns {string}
 */
export function describe(e) {
  if (e instanceof KmtError) {
    if (e.status === 401) return 'You are not signed in (or your session ended): sign in again.';
    if (e.status === 403) return 'You do not have permission to do this.';
    if (e.kind !== 'http') return e.detail || e.message;
    return e.detail || e.title || e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/** A date-time for people, in their locale. @param {string|null|undefined} t */
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

/**
 * Splits a comma-separated list ("a, b ,c") into trimmed, non-empty names.
 * @param {string} s
 * @returns {string[]}
 */
export function names(s) {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

/**
 * Announces `text` in the page's polite live region (`#status`).
 * @param {string} text
 */
export function announce(text) {
  const s = document.getElementById('status');
  if (s) s.textContent = text;
}

/** The page's shell (the shared header), once `startPage` has drawn it. @type {Shell|undefined} */
let shell;

/** Refreshes the unread count in the header (quietly: it is a hint). */
export async function refreshUnread() {
  await shell?.refreshUnread();
}

/**
 * Draws the shared header (`shell.js`) into `#shell` and finds the session;
 * signing in or out there reloads the page.
 * @param {'search'|'editor'|'review'|'notifications'|'admin'|'dashboard'} current the page's entry in the navigation
 * @returns {Promise<SessionInfo|null>}
 */
export async function startPage(current) {
  shell = await mountShell({ kmt, current: current === 'search' ? '/' : `/${current}` });
  shell.onChange(() => location.reload());
  return shell.me.username ? kmt.session().catch(() => null) : null;
}

/**
 * Fills `<main>` with a note that this page needs a signed-in user.
 * @param {HTMLElement} main
 * @param {string} what what the page is for
 */
export function needSignIn(main, what) {
  main.replaceChildren(
    h('h1', { text: what }),
    h('p', { text: 'Sign in (above) to use this page.' }));
}

/**
 * Shows messages next to form fields: each field's control (by element id)
 * gets `aria-invalid` and its message in `#{id}-error`, which
 * `aria-describedby` points to (beside any hint it already names). Fields
 * with no control on the page are returned, for a summary.
 * @param {Record<string, string[]>} byField messages by API field name
 * @param {Record<string, string>} controls API field name → control id
 * @returns {[string, string[]][]} the messages of fields without a control
 */
export function showFieldErrors(byField, controls) {
  /** @type {[string, string[]][]} */
  const rest = [];
  for (const [field, messages] of Object.entries(byField)) {
    const id = controls[field] ?? controls[field.replace(/[.[].*$/, '')];
    const control = id ? document.getElementById(id) : null;
    if (!control) {
      rest.push([field, messages]);
      continue;
    }
    control.setAttribute('aria-invalid', 'true');
    let msg = document.getElementById(`${id}-error`);
    if (!msg) {
      msg = h('p', { class: 'field-error', attrs: { id: `${id}-error` } });
      control.insertAdjacentElement('afterend', msg);
    }
    msg.textContent = messages.join('; ');
    const described = (control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
    if (!described.includes(msg.id)) control.setAttribute('aria-describedby', [...described, msg.id].join(' '));
  }
  return rest;
}

/**
 * Removes what {@link showFieldErrors} added inside `root`.
 * @param {ParentNode} root
 */
export function clearFieldErrors(root) {
  for (const msg of Array.from(root.querySelectorAll('.field-error'))) {
    const control = root.querySelector(`[aria-describedby~="${msg.id}"]`);
    if (control) {
      const rest = (control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter((x) => x && x !== msg.id);
      if (rest.length) control.setAttribute('aria-describedby', rest.join(' '));
      else control.removeAttribute('aria-describedby');
      control.removeAttribute('aria-invalid');
    }
    msg.remove();
  }
  for (const c of Array.from(root.querySelectorAll('[aria-invalid]'))) c.removeAttribute('aria-invalid');
}

/**
 * The messages of a failed write by field (rule faults, the one offending
 * field), or the general message under `''`.
 * @param {unknown} e
 * @returns {Record<string, string[]>}
 */
export function errorsByField(e) {
  if (e instanceof KmtError && e.kind === 'http') {
    const f = e.fieldErrors();
    if (Object.keys(f).length) return f;
  }
  return { '': [describe(e)] };
}
