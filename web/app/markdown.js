// @ts-check
/**
 * @file A small, safe Markdown renderer for previews: `parse` turns text
 * into a tree of blocks and inlines (pure, unit-tested in node), `render`
 * builds DOM nodes from it with `createElement` and `textContent` only —
 * never `innerHTML` — so nothing in the text becomes markup or script.
 * Links keep only http(s), mailto and same-site targets.
 *
 * It covers what articles use: headings, paragraphs, lists, block quotes,
 * fenced code, rules, emphasis, code spans, links, and KMT's section blocks
 * (`::: section id=… audience=… title="…"` … `:::`), which are shown as
 * framed regions saying who may see them.
 */

/**
 * @typedef {{type: 'text', text: string}
 *   | {type: 'code', text: string}
 *   | {type: 'strong'|'em', children: Inline[]}
 *   | {type: 'link', href: string, children: Inline[]}} Inline
 */

/**
 * @typedef {{type: 'heading', level: number, inlines: Inline[]}
 *   | {type: 'para', inlines: Inline[]}
 *   | {type: 'list', ordered: boolean, items: Inline[][]}
 *   | {type: 'code', text: string}
 *   | {type: 'quote', blocks: Block[]}
 *   | {type: 'hr'}
 *   | {type: 'section', id: string, audience: string[], title: string, blocks: Block[]}} Block
 */

const SECTION_OPEN = /^:::\s*section\b(.*)$/;
const SECTION_CLOSE = /^:::\s*$/;

/**
 * The attributes of a section opener: `id=x audience=a,b title="T"`.
 * @param {string} s
 * @returns {Record<string, string>}
 */
export function sectionAttrs(s) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const m of s.matchAll(/([a-z_]+)=(?:"([^"]*)"|(\S+))/g)) out[m[1]] = m[2] ?? m[3];
  return out;
}

/**
 * Parses Markdown into blocks.
 * @param {string} text
 * @returns {Block[]}
 */
export function parse(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  /** @returns {Block[]} */
  const blocks = (/** @type {boolean} */ inSection) => {
    /** @type {Block[]} */
    const out = [];
    /** @type {string[]} */
    let para = [];
    const flush = () => {
      if (para.length) out.push({ type: 'para', inlines: inline(para.join(' ')) });
      para = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      if (inSection && SECTION_CLOSE.test(line)) {
        i++;
        break;
      }
      const open = SECTION_OPEN.exec(line);
      if (open) {
        flush();
        i++;
        const a = sectionAttrs(open[1]);
        out.push({
          type: 'section',
          id: a.id ?? '',
          audience: (a.audience ?? '').split(',').map((x) => x.trim()).filter(Boolean),
          title: a.title ?? '',
          blocks: blocks(true),
        });
        continue;
      }
      if (/^\s*$/.test(line)) { flush(); i++; continue; }
      const fence = /^(```|~~~)/.exec(line);
      if (fence) {
        flush();
        i++;
        const code = [];
        while (i < lines.length && !lines[i].startsWith(fence[1])) code.push(lines[i++]);
        i++;
        out.push({ type: 'code', text: code.join('\n') });
        continue;
      }
      const head = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
      if (head) {
        flush();
        out.push({ type: 'heading', level: head[1].length, inlines: inline(head[2]) });
        i++;
        continue;
      }
      if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); out.push({ type: 'hr' }); i++; continue; }
      if (/^>\s?/.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && /^>\s?/.test(lines[i])) quoted.push(lines[i++].replace(/^>\s?/, ''));
        out.push({ type: 'quote', blocks: parse(quoted.join('\n')) });
        continue;
      }
      const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
      if (item) {
        flush();
        const ordered = /\d/.test(item[1]);
        /** @type {Inline[][]} */
        const items = [];
        while (i < lines.length) {
          const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
          if (!m || /\d/.test(m[1]) !== ordered) break;
          let textOf = m[2];
          i++;
          // Continuation lines (indented, not a new item) join the item.
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
            textOf += ` ${lines[i++].trim()}`;
          }
          items.push(inline(textOf));
        }
        out.push({ type: 'list', ordered, items });
        continue;
      }
      para.push(line.trim());
      i++;
    }
    flush();
    return out;
  };
  return blocks(false);
}

/**
 * Parses inline Markdown: code spans, links, strong and emphasis.
 * @param {string} s
 * @returns {Inline[]}
 */
export function inline(s) {
  /** @type {Inline[]} */
  const out = [];
  let text = '';
  const push = () => { if (text) out.push({ type: 'text', text }); text = ''; };
  let i = 0;
  while (i < s.length) {
    const rest = s.slice(i);
    let m;
    if (rest[0] === '\\' && rest.length > 1 && /[\\`*_[\]()#!>-]/.test(rest[1])) {
      text += rest[1];
      i += 2;
    } else if ((m = /^(`+)([\s\S]*?[^`])\1(?!`)/.exec(rest))) {
      push();
      out.push({ type: 'code', text: m[2].trim() });
      i += m[0].length;
    } else if ((m = /^\[([^\]]*)\]\(\s*([^)\s]*)(?:\s+"[^"]*")?\s*\)/.exec(rest))) {
      push();
      const href = safeHref(m[2]);
      if (href) out.push({ type: 'link', href, children: inline(m[1]) });
      else out.push(...inline(m[1]));
      i += m[0].length;
    } else if ((m = /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/.exec(rest))) {
      push();
      out.push({ type: 'strong', children: inline(m[2]) });
      i += m[0].length;
    } else if ((m = /^(\*|_)(?=\S)([\s\S]*?\S)\1(?![*_])/.exec(rest)) && !(m[1] === '_' && /\w$/.test(text))) {
      push();
      out.push({ type: 'em', children: inline(m[2]) });
      i += m[0].length;
    } else {
      text += rest[0];
      i += 1;
    }
  }
  push();
  return out;
}

/**
 * A link target that is safe to follow: http(s), mailto, or a path on this
 * site; anything else (`javascript:`, `data:` …) is refused (`''`).
 * @param {string} href
 * @returns {string}
 */
export function safeHref(href) {
  const h = href.trim();
  if (/^(https?:|mailto:)/i.test(h)) return h;
  if (/^(\/(?!\/)|#|\?)/.test(h)) return h;
  if (/^[\w.-]+(\/[\w./-]*)?$/.test(h) && !h.includes(':')) return h;
  return '';
}

/**
 * Builds DOM nodes for blocks (text only through `textContent`).
 * @param {Block[]} blocks
 * @param {Document} [doc]
 * @returns {DocumentFragment}
 */
export function render(blocks, doc = document) {
  const frag = doc.createDocumentFragment();
  for (const b of blocks) frag.append(block(b, doc));
  return frag;
}

/** @param {Block} b @param {Document} doc @returns {Node} */
function block(b, doc) {
  switch (b.type) {
    case 'heading': {
      // Article headings sit below the page's own headings.
      const e = doc.createElement(`h${Math.min(6, b.level + 2)}`);
      e.append(inlines(b.inlines, doc));
      return e;
    }
    case 'para': {
      const e = doc.createElement('p');
      e.append(inlines(b.inlines, doc));
      return e;
    }
    case 'list': {
      const e = doc.createElement(b.ordered ? 'ol' : 'ul');
      for (const it of b.items) {
        const li = doc.createElement('li');
        li.append(inlines(it, doc));
        e.append(li);
      }
      return e;
    }
    case 'code': {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      code.textContent = b.text;
      pre.append(code);
      return pre;
    }
    case 'quote': {
      const e = doc.createElement('blockquote');
      e.append(render(b.blocks, doc));
      return e;
    }
    case 'hr':
      return doc.createElement('hr');
    case 'section': {
      const e = doc.createElement('section');
      e.className = 'md-section';
      e.dataset.section = b.id;
      const label = doc.createElement('p');
      label.className = 'md-section-label';
      label.textContent = `Section ${b.title ? `“${b.title}”` : b.id}` +
        ` — ${b.audience.length ? `only for ${b.audience.join(', ')}` : 'for every reader'}`;
      e.append(label, render(b.blocks, doc));
      return e;
    }
  }
}

/** @param {Inline[]} list @param {Document} doc @returns {DocumentFragment} */
function inlines(list, doc) {
  const frag = doc.createDocumentFragment();
  for (const x of list) {
    switch (x.type) {
      case 'text':
        frag.append(doc.createTextNode(x.text));
        break;
      case 'code': {
        const e = doc.createElement('code');
        e.textContent = x.text;
        frag.append(e);
        break;
      }
      case 'strong':
      case 'em': {
        const e = doc.createElement(x.type);
        e.append(inlines(x.children, doc));
        frag.append(e);
        break;
      }
      case 'link': {
        const e = doc.createElement('a');
        e.href = x.href;
        if (/^https?:/i.test(x.href)) e.rel = 'noopener noreferrer';
        e.append(inlines(x.children, doc));
        frag.append(e);
        break;
      }
    }
  }
  return frag;
}

/**
 * A line diff (longest common subsequence) for showing what a submission
 * changes: `' '` kept, `'-'` removed, `'+'` added.
 * @param {string} before
 * @param {string} after
 * @returns {{op: ' '|'-'|'+', line: string}[]}
 */
export function lineDiff(before, after) {
  const a = before === '' ? [] : before.split('\n');
  const b = after === '' ? [] : after.split('\n');
  /** @type {{op: ' '|'-'|'+', line: string}[]} */
  const out = [];
  // Very long texts: show removal and addition whole rather than spend
  // quadratic time in the browser.
  if (a.length * b.length > 4_000_000) {
    return [...a.map((line) => ({ op: /** @type {const} */ ('-'), line })), ...b.map((line) => ({ op: /** @type {const} */ ('+'), line }))];
  }
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: ' ', line: a[i] }); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: '-', line: a[i++] });
    else out.push({ op: '+', line: b[j++] });
  }
  while (i < n) out.push({ op: '-', line: a[i++] });
  while (j < m) out.push({ op: '+', line: b[j++] });
  return out;
}
