// @ts-check
/**
 * @file The header every page shares: brand, navigation (by what the
 * reader may do), the notifications link with its unread count, the
 * sign-in form or the signed-in user with "Sign out", and the skip link.
 *
 * ## The page contract (every page follows it)
 *
 * ```html
 * <body>
 * <header id="shell"></header>            <!-- filled by mountShell -->
 * <main id="main" tabindex="-1"> … <h1>…</h1> … </main>
 * <script type="module" src="/assets/PAGE.js"></script>
 * </body>
 * ```
 *
 * ```js
 * import { mountShell } from './shell.js';
 * const shell = await mountShell({ current: '/review' });
 * shell.kmt;        // the page's one KmtClient (CSRF token already recovered)
 * shell.me;         // {username, roles, permissions} ('' username: anonymous)
 * shell.onChange(async (me) => { … });   // after sign-in / sign-out: reload
 * shell.can('article.publish');          // a permission of the reader
 * await shell.refreshUnread();           // e.g. after marking notifications read
 * shell.announce('Saved.');              // polite message for screen readers
 * ```
 *
 * - `current` is the path of the page's own nav entry (`/`, `/review`,
 *   `/editor`, `/dashboard`, `/admin`, `/notifications`); it gets
 *   `aria-current="page"`. Pages not in the nav (e.g. `/article`) pass none.
 * - The skip link ("Skip to content") is inserted as the body's first
 *   child and moves focus to `#main` (hence its `tabindex="-1"`).
 * - No inline script or style anywhere (the CSP forbids them); styles are
 *   in `app.css` under `.shell`.
 * - Element ids the shell owns (do not reuse them): `shell`, `skip`,
 *   `nav`, `signin`, `username`, `password`, `signin-error`, `who`,
 *   `who-name`, `signout`, `unread`, `announce`.
 */
import { KmtClient, KmtError } from './kmt-client.js';

/** @typedef {import('./kmt-types.js').Me} Me */

/**
 * The navigation: path, label and the permission that shows it (`null`:
 * everyone; `signed-in`: any signed-in reader).
 * @type {{path: string, label: string, needs: string|null}[]}
 */
export const NAV = [
  { path: '/', label: 'Search', needs: null },
  { path: '/editor', label: 'Editor', needs: 'article.write' },
  { path: '/review', label: 'Review', needs: 'article.publish' },
  { path: '/dashboard', label: 'Dashboard', needs: 'analytics.read' },
  { path: '/admin', label: 'Admin', needs: 'user.admin' },
  { path: '/notifications', label: 'Notifications', needs: 'signed-in' },
];

/** Anonymous: no name, no roles, reads public articles. @type {Me} */
const ANONYMOUS = { username: '', roles: [], permissions: ['article.read'] };

/**
 * @typedef {object} Shell
 * @property {KmtClient} kmt
 * @property {Me} me
 * @property {(perm: string) => boolean} can
 * @property {(fn: (me: Me) => void|Promise<void>) => void} onChange
 * @property {() => Promise<void>} refreshUnread
 * @property {(text: string) => void} announce
 */

/**
 * Builds the header into `<header id="shell">` and recovers the session.
 * @param {{current?: string, kmt?: KmtClient}} [opts]
 * @returns {Promise<Shell>}
 */
export async function mountShell(opts = {}) {
  const kmt = opts.kmt ?? new KmtClient();
  const host = document.getElementById('shell') ?? document.body.insertBefore(h('header', { id: 'shell' }), document.body.firstChild);
  host.classList.add('shell');

  const skip = h('a', { id: 'skip', className: 'skip', href: '#main' }, 'Skip to content');
  skip.addEventListener('click', (ev) => {
    const main = document.getElementById('main');
    if (!main) return;
    ev.preventDefault();
    main.focus();
    main.scrollIntoView();
  });
  document.body.insertBefore(skip, document.body.firstChild);

  const brand = h('a', { className: 'brand', href: '/' }, 'KMT knowledge base');
  const nav = h('nav', { id: 'nav', ariaLabel: 'Main' });
  const navList = h('ul');
  nav.append(navList);

  const user = /** @type {HTMLInputElement} */ (h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true }));
  const pass = /** @type {HTMLInputElement} */ (h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }));
  const form = /** @type {HTMLFormElement} */ (h('form', { id: 'signin', className: 'signin', ariaLabel: 'Sign in' },
    h('label', { htmlFor: 'username' }, 'User'), user,
    h('label', { htmlFor: 'password' }, 'Password'), pass,
    h('button', { type: 'submit' }, 'Sign in')));
  const whoName = h('span', { id: 'who-name' });
  const signout = h('button', { id: 'signout', type: 'button' }, 'Sign out');
  const who = h('div', { id: 'who', className: 'signin', hidden: true }, whoName, ' ', signout);
  const error = h('p', { id: 'signin-error', className: 'error', role: 'alert' });
  const announcer = h('p', { id: 'announce', className: 'visually-hidden', role: 'status', ariaLive: 'polite' });
  host.replaceChildren(h('div', { className: 'bar' }, brand, nav, form, who, error), announcer);

  /** @type {((me: Me) => void|Promise<void>)[]} */
  const listeners = [];
  /** @type {Shell} */
  const shell = {
    kmt,
    me: ANONYMOUS,
    can: (perm) => shell.me.permissions.includes(perm),
    onChange: (fn) => { listeners.push(fn); },
    refreshUnread,
    announce: (text) => {
      // Cleared first so the same message is announced again.
      announcer.textContent = '';
      setTimeout(() => { announcer.textContent = text; }, 50);
    },
  };

  function renderNav() {
    const signedIn = shell.me.username !== '';
    navList.replaceChildren(...NAV
      .filter((n) => n.needs === null || (n.needs === 'signed-in' ? signedIn : shell.can(n.needs)))
      .map((n) => {
        const a = h('a', { href: n.path }, n.label);
        if (n.path === opts.current) a.setAttribute('aria-current', 'page');
        if (n.path === '/notifications') {
          a.id = 'nav-notifications';
          a.append(' ', h('span', { id: 'unread', className: 'badge', hidden: true }));
        }
        return h('li', {}, a);
      }));
    form.hidden = signedIn;
    who.hidden = !signedIn;
    whoName.textContent = signedIn ? `Signed in as ${shell.me.username}` : '';
  }

  async function refreshUnread() {
    const badge = document.getElementById('unread');
    const link = document.getElementById('nav-notifications');
    if (!badge || !link || !shell.me.username) return;
    try {
      const n = await kmt.unreadCount();
      badge.textContent = String(n);
      badge.hidden = n === 0;
      link.setAttribute('aria-label', n === 0 ? 'Notifications' : `Notifications, ${n} unread`);
    } catch {
      // The count is a convenience; the notifications page reports errors.
    }
  }

  /** @param {boolean} notify */
  async function load(notify) {
    try {
      const s = await kmt.session();
      shell.me = s ? await kmt.me() : ANONYMOUS;
    } catch (e) {
      shell.me = ANONYMOUS;
      error.textContent = `Could not check your session: ${e instanceof KmtError ? e.detail || e.message : e}`;
    }
    renderNav();
    refreshUnread();
    if (notify) for (const fn of listeners) await fn(shell.me);
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      await kmt.signIn(user.value, pass.value);
      pass.value = '';
      await load(true);
      shell.announce(`Signed in as ${shell.me.username}.`);
      signout.focus();
    } catch (e) {
      error.textContent = e instanceof KmtError && e.status === 401
        ? 'Wrong user name or password.'
        : `Sign-in failed: ${e instanceof KmtError ? e.detail || e.message : e}`;
      user.focus();
    }
  });
  signout.addEventListener('click', async () => {
    await kmt.signOut().catch(() => {});
    await load(true);
    shell.announce('Signed out.');
    user.focus();
  });

  await load(false);
  return shell;
}

/**
 * A new element with properties and children (text children are text
 * nodes, never HTML). `ariaLabel`/`ariaLive` and the like are set as
 * attributes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('aria') && k.length > 4) {
      el.setAttribute(`aria-${k.slice(4).toLowerCase()}`, String(v));
    } else if (k === 'role' || k.startsWith('data-')) {
      el.setAttribute(k, String(v));
    } else {
      /** @type {any} */ (el)[k] = v;
    }
  }
  el.append(...children);
  return el;
}
