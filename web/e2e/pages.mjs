// Every page of the web application, for the accessibility check and the
// screenshots (pages.test.mjs). Each entry: `name` (the screenshots are
// NAME-desktop.png and NAME-phone.png), `path` (a string, or an async
// function of the server and the demo corpus's article ids that returns
// one), `user` to sign in as (null: anonymous), and `ready`, a selector
// that matches once the page has loaded its data. Add your pages here.

/**
 * @typedef {object} PageSpec
 * @property {string} name
 * @property {string | ((ctx: PageContext) => string|Promise<string>)} path
 * @property {string|null} user
 * @property {string} ready
 */

/**
 * @typedef {object} PageContext
 * @property {import('./harness.mjs').Server} server
 * @property {(slug: string) => Promise<number>} idOf the id of a demo article by slug
 */

/** @type {PageSpec[]} */
export const PAGES = [
  { name: 'search', path: '/?q=penalty', user: null, ready: '#hits[data-q="penalty"]:not([aria-busy]) li' },
  { name: 'search-empty', path: '/?q=zzqxv%20qqzzv', user: 'vera', ready: '#empty:not([hidden])' },
  {
    name: 'article',
    path: async ({ idOf }) => `/article?id=${await idOf('accepting-payments-at-walk-in-centers')}&level=detailed`,
    user: 'vera',
    ready: '#content[data-ready="true"]',
  },
  {
    name: 'article-reviewer',
    path: async ({ idOf }) => `/article?id=${await idOf('accepting-payments-at-walk-in-centers')}&level=detailed`,
    user: 'rita',
    ready: '#content[data-ready="true"]',
  },
  { name: 'article-missing', path: '/article?id=999999', user: 'vera', ready: '#error:not([hidden])' },
  { name: 'editor', path: '/editor', user: 'alice', ready: 'main[data-ready]' },
  { name: 'review', path: '/review', user: 'rita', ready: 'main[data-ready]' },
  { name: 'notifications', path: '/notifications', user: 'alice', ready: 'main[data-ready]' },
  { name: 'admin', path: '/admin', user: 'admin', ready: 'main[data-ready]' },
  { name: 'dashboard', path: '/dashboard', user: 'rita', ready: 'main[data-ready]' },
];
