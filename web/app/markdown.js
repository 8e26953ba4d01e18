// @ts-check
/**
 * @file A small, safe Markdown renderer for article text. It parses into a
 * tree of plain nodes (`{tag, attrs, children}` and strings) and builds
 * DOM elements from that tree with `createElement`/`textContent`: text is
 * never parsed as HTML, so an article cannot inject markup or script.
 * Links keep only `http:`, `https:`, `mailto:` and same-site targets.
 *
 * Covers what the knowledge base uses: headings (shifted so the article
 * title stays the only `h1`), paragraphs, bullet and numbered lists (one
 * level of nesting), tables, fenced code, block quotes, rules, `**bold**`,
 * `*emphasis*`, `` `code` ``, links, and KMT's section fences
 * (`::: section id=… audience=… title="…"` … `:::`), which become
 * `<section>` elements with their title as a heading.
 */

/**
 * @typedef {object} MdElement
 * @property {string} tag
 * @property {Record<string, string>} attrs
 * @property {MdNode[]} children
 */
/** @typedef {MdElement|string} MdNode */

/** @param {string} tag @param {Record<string, string>} [attrs] @param {MdNode[]} [children] @returns {MdElement} */
const el = (tag, attrs = {}, children = []) => ({ tag, attrs, children });

const FENCE = /^\s*```/;
const SECTION_OPEN = /^\s*:::\s*section\b(.*)$/;
const SECTION_CLOSE = /^\s*:::\s*$/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^(\s*)[-*+]\s+(.*)$/;
const ORDERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

/**
 * Parses Markdown into nodes.
 * @param {string} text
 * @param {{headingBase?: number}} [opts] the level `#` maps to (default 2)
 * @returns {MdNode[]}
 */
export function parseMarkdown(text, opts = {}) {
  const base = opts.headingBase ?? 2;
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  return blocks(lines, base);
}

/**
 * @param {string[]} lines
 * @param {number} base
 * @returns {MdNode[]}
 */
function blocks(lines, base) {
  /** @type {MdNode[]} */
  const out = [];
  let i = 0;
  /** @type {string[]} */
  let para = [];
  const flush = () => {
    if (para.length) out.push(el('p', {}, inline(para.join(' '))));
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') { flush(); i++; continue; }
    if (FENCE.test(line)) {
      flush();
      const body = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i])) body.push(lines[i++]);
      i++;
      out.push(el('pre', {}, [el('code', {}, [body.join('\n')])]));
      continue;
    }
    const open = SECTION_OPEN.exec(line);
    if (open) {
      flush();
      const inner = [];
      i++;
      while (i < lines.length && !SECTION_CLOSE.test(lines[i])) inner.push(lines[i++]);
      i++;
      out.push(section(open[1], inner, base));
      continue;
    }
    const hd = HEADING.exec(line);
    if (hd) {
      flush();
      const level = Math.min(6, base + hd[1].length - 1);
      out.push(el(`h${level}`, {}, inline(hd[2])));
      i++;
      continue;
    }
    if (RULE.test(line) && para.length === 0) { flush(); out.push(el('hr')); i++; continue; }
    if (BULLET.test(line) || ORDERED.test(line)) {
      flush();
      const [list, next] = parseList(lines, i);
      out.push(list);
      i = next;
      continue;
    }
    if (line.trimStart().startsWith('>')) {
      flush();
      const quoted = [];
      while (i < lines.length && lines[i].trimStart().startsWith('>')) {
        quoted.push(lines[i].trimStart().slice(1).replace(/^ /, ''));
        i++;
      }
      out.push(el('blockquote', {}, blocks(quoted, base)));
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes('-')) {
      flush();
      const [table, next] = parseTable(lines, i);
      out.push(table);
      i = next;
      continue;
    }
    para.push(line.trim());
    i++;
  }
  flush();
  return out;
}

/**
 * A section fence: its attributes and its lines.
 * @param {string} attrs
 * @param {string[]} inner
 * @param {number} base
 * @returns {MdElement}
 */
function section(attrs, inner, base) {
  /** @type {Record<string, string>} */
  const a = {};
  for (const m of attrs.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)) a[m[1]] = m[2] ?? m[3];
  /** @type {Record<string, string>} */
  const attributes = { class: 'kmt-section' };
  if (a.id && /^[A-Za-z0-9_-]{1,64}$/.test(a.id)) attributes['data-section'] = a.id;
  /** @type {MdNode[]} */
  const children = [];
  if (a.title) children.push(el(`h${Math.min(6, base + 1)}`, { class: 'section-title' }, [a.title]));
  if (a.audience) {
    attributes['data-audience'] = a.audience;
    children.push(el('p', { class: 'section-audience' }, [`Shown to: ${a.audience.split(',').join(', ')}`]));
  }
  children.push(...blocks(inner, base + 1));
  return el('section', attributes, children);
}

/**
 * A list starting at line `i` (bullets or numbers); deeper-indented items
 * become a nested list of the item before.
 * @param {string[]} lines
 * @param {number} i
 * @returns {[MdElement, number]}
 */
function parseList(lines, i) {
  const first = BULLET.exec(lines[i]) ?? ORDERED.exec(lines[i]);
  const indent = (first?.[1] ?? '').length;
  const ordered = !BULLET.test(lines[i]);
  /** @type {Record<string, string>} */
  const attrs = {};
  const start = ORDERED.exec(lines[i])?.[2];
  if (ordered && start && start !== '1') attrs.start = String(Number(start));
  const list = el(ordered ? 'ol' : 'ul', attrs);
  /** @type {MdElement|undefined} */
  let item;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      // A blank line ends the list unless an item follows at this level.
      const next = lines[i + 1];
      if (next !== undefined && (BULLET.test(next) || ORDERED.test(next))) { i++; continue; }
      break;
    }
    const m = BULLET.exec(line) ?? ORDERED.exec(line);
    if (m) {
      const depth = m[1].length;
      if (depth > indent && item) {
        const [sub, next] = parseList(lines, i);
        item.children.push(sub);
        i = next;
        continue;
      }
      if (depth < indent) break;
      if (BULLET.test(line) === ordered) break; // another kind of list
      item = el('li', {}, inline(BULLET.test(line) ? /** @type {string} */ (m[2]) : m[3]));
      list.children.push(item);
      i++;
      continue;
    }
    // A continuation line of the item.
    if (item && /^\s+\S/.test(line)) {
      item.children.push(' ', ...inline(line.trim()));
      i++;
      continue;
    }
    break;
  }
  return [list, i];
}

/**
 * A pipe table from its header line, separator and rows.
 * @param {string[]} lines
 * @param {number} i
 * @returns {[MdElement, number]}
 */
function parseTable(lines, i) {
  /** @param {string} l */
  const cells = (l) => l.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
  const head = cells(lines[i]);
  const align = cells(lines[i + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : ''));
  i += 2;
  const rows = [];
  while (i < lines.length && lines[i].includes('|') && lines[i].trim() !== '') rows.push(cells(lines[i++]));
  /** @param {number} n @returns {Record<string, string>} */
  const style = (n) => (align[n] ? { class: `align-${align[n]}` } : {});
  const table = el('table', {}, [
    el('thead', {}, [el('tr', {}, head.map((c, n) => el('th', { scope: 'col', ...style(n) }, inline(c))))]),
    el('tbody', {}, rows.map((r) => el('tr', {}, head.map((_, n) => el('td', style(n), inline(r[n] ?? '')))))),
  ]);
  return [el('div', { class: 'table-wrap' }, [table]), i];
}

/**
 * Inline markup: code spans first (nothing inside them is markup), then
 * links, strong, emphasis.
 * @param {string} text
 * @returns {MdNode[]}
 */
export function inline(text) {
  /** @type {MdNode[]} */
  const out = [];
  const re = /`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)(?:\s+"[^"]*")?\)|\*\*(.+?)\*\*|__(.+?)__|\*([^*\s](?:[^*]*[^*\s])?)\*|(?<![A-Za-z0-9])_([^_\s](?:[^_]*[^_\s])?)_(?![A-Za-z0-9])/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    const at = m.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    if (m[1] !== undefined) out.push(el('code', {}, [m[1]]));
    else if (m[2] !== undefined) {
      const href = safeHref(m[3]);
      out.push(href ? el('a', { href }, inline(m[2])) : el('span', {}, inline(m[2])));
    } else if (m[4] !== undefined || m[5] !== undefined) out.push(el('strong', {}, inline(m[4] ?? m[5])));
    else out.push(el('em', {}, inline(m[6] ?? m[7])));
    last = at + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/**
 * The link target if it is safe: http(s), mailto, or same-site (a path,
 * `#fragment` or `?query`); otherwise `null`.
 * @param {string} href
 * @returns {string|null}
 */
export function safeHref(href) {
  const h = href.trim();
  // Browsers drop control characters and blanks while parsing a URL
  // ("java\tscript:"), so a target holding any is refused outright.
  if (h === '' || /[\x00-\x20\x7f\\]/.test(h)) return null;
  if (/^(https?:|mailto:)/i.test(h)) return h;
  if (h.startsWith('//') || /^[a-z][a-z0-9+.-]*:/i.test(h)) return null;
  return h;
}

/**
 * Builds DOM nodes from parsed Markdown (text is always a text node).
 * @param {MdNode[]} nodes
 * @param {Document} [doc]
 * @returns {DocumentFragment}
 */
export function toDom(nodes, doc = document) {
  const frag = doc.createDocumentFragment();
  for (const n of nodes) frag.append(typeof n === 'string' ? doc.createTextNode(n) : build(n, doc));
  return frag;
}

/** @param {MdElement} n @param {Document} doc @returns {HTMLElement} */
function build(n, doc) {
  const e = doc.createElement(n.tag);
  for (const [k, v] of Object.entries(n.attrs)) e.setAttribute(k, v);
  e.append(toDom(n.children, doc));
  return e;
}

/**
 * Markdown text as DOM nodes.
 * @param {string} text
 * @param {{headingBase?: number}} [opts]
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text, opts) {
  return toDom(parseMarkdown(text, opts));
}
