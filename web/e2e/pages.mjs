// The pages of the web application, for the accessibility (axe-core) and
// screenshot tests: where each is, who signs in to see it, and a selector
// that is present once it has drawn its content.
/** @typedef {{name: string, path: string, user: string|null, ready: string}} PageSpec */

/** @type {PageSpec[]} */
export const PAGES = [
  { name: 'editor', path: '/editor', user: 'alice', ready: 'main[data-ready]' },
  { name: 'review', path: '/review', user: 'rita', ready: 'main[data-ready]' },
  { name: 'notifications', path: '/notifications', user: 'alice', ready: 'main[data-ready]' },
  { name: 'admin', path: '/admin', user: 'admin', ready: 'main[data-ready]' },
  { name: 'dashboard', path: '/dashboard', user: 'rita', ready: 'main[data-ready]' },
];
