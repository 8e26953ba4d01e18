// @ts-check
// Notifications (`/notifications`): newest first with the unread count;
// each can be marked read, or all at once. Links go to the article (the
// editor for the author's own drafts and reviews sent back).
import { kmt, startPage, needSignIn, byId, h, announce, describe, when, refreshUnread } from './page-common.js';

/** @typedef {import('./kmt-types.js').Notification} Notification */

const main = byId('main');
const onlyUnread = /** @type {HTMLInputElement} */ (byId('only-unread'));

/** What a notification's kind means, for people. */
const KINDS = /** @type {Record<string, string>} */ ({
  review_requested: 'Review requested',
  approved: 'Approved',
  rejected: 'Sent back',
  escalation: 'Escalation',
  update_needed: 'Update needed',
});

const session = await startPage('notifications');
if (!session) {
  needSignIn(main, 'Notifications');
} else {
  onlyUnread.addEventListener('change', () => { load(); });
  byId('mark-all').addEventListener('click', async () => {
    try {
      const n = await kmt.markRead();
      await load();
      announce(`Marked ${n} notification${n === 1 ? '' : 's'} as read.`);
    } catch (e) {
      announce(`Could not mark them read: ${describe(e)}`);
    }
  });
  await load();
  main.dataset.ready = 'true';
}

async function load() {
  const list = byId('inbox');
  list.setAttribute('aria-busy', 'true');
  try {
    const inbox = await kmt.notifications({ unread: onlyUnread.checked, limit: 100 });
    list.replaceChildren(...inbox.items.map(item));
    byId('inbox-empty').hidden = inbox.items.length > 0;
    list.dataset.unread = String(inbox.unread);
    announce(`${inbox.unread} unread notification${inbox.unread === 1 ? '' : 's'}.`);
    /** @type {HTMLButtonElement} */ (byId('mark-all')).disabled = inbox.unread === 0;
  } catch (e) {
    announce(`Could not load notifications: ${describe(e)}`);
  } finally {
    list.removeAttribute('aria-busy');
    refreshUnread();
  }
}

/** @param {Notification} n */
function item(n) {
  const unread = !n.read_at;
  const msgId = `n-${n.id}-msg`;
  const li = h('li', { class: unread ? 'unread' : '', attrs: { 'data-id': n.id, 'data-kind': n.kind } },
    h('p', {},
      h('span', { class: 'badge', text: KINDS[n.kind] ?? n.kind }),
      unread ? h('strong', { text: 'Unread: ' }) : null,
      h('span', { attrs: { id: msgId }, text: n.message })),
    h('p', { class: 'meta', text: when(n.created_at) }));
  const actions = h('div', { class: 'actions' });
  if (n.article_id) {
    const own = n.kind === 'rejected' || n.kind === 'update_needed';
    actions.append(h('a', {
      attrs: { href: own ? `/editor?id=${n.article_id}` : n.kind === 'review_requested' || n.kind === 'escalation' ? '/review' : `/article?id=${n.article_id}`, 'aria-describedby': msgId },
      text: own ? 'Edit the article' : n.kind === 'review_requested' || n.kind === 'escalation' ? 'Go to the review queue' : 'Open the article',
    }));
  }
  if (unread) {
    actions.append(h('button', {
      class: 'secondary',
      attrs: { type: 'button', 'aria-describedby': msgId },
      text: 'Mark as read',
      on: {
        click: async () => {
          try {
            await kmt.markRead([n.id]);
            await load();
            announce('Marked as read.');
          } catch (e) {
            announce(`Could not mark it read: ${describe(e)}`);
          }
        },
      },
    }));
  }
  li.append(actions);
  return li;
}
