// The article Markdown renderer: structure, sections, and safety (text is
// never markup; unsafe links are dropped).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseMarkdown, inline, safeHref } from '../app/markdown.js';

test('headings shift below the title; paragraphs, lists and tables', () => {
  const md = '## Steps\n\n1. First **bold**\n2. Second\n   more\n\n- a\n  - nested\n- b\n\n| A | B |\n|---|--:|\n| 1 | 2 |\n\nPlain *em* and `code`.';
  const [h, ol, ul, table, p] = /** @type {any[]} */ (parseMarkdown(md));
  assert.equal(h.tag, 'h3');
  assert.deepEqual(h.children, ['Steps']);
  assert.equal(ol.tag, 'ol');
  assert.equal(ol.children.length, 2);
  assert.deepEqual(ol.children[0].children, ['First ', { tag: 'strong', attrs: {}, children: ['bold'] }]);
  assert.deepEqual(ol.children[1].children, ['Second', ' ', 'more']);
  assert.equal(ul.tag, 'ul');
  assert.equal(ul.children[0].children[1].tag, 'ul', 'nested list in the item before');
  assert.equal(table.children[0].tag, 'table');
  assert.equal(table.children[0].children[1].children[0].children[1].attrs.class, 'align-right');
  assert.equal(p.tag, 'p');
  assert.deepEqual(p.children.map((/** @type {any} */ c) => c.tag ?? c), ['Plain ', 'em', ' and ', 'code', '.']);
});

test('section fences become sections with their title and audience', () => {
  const md = 'Intro\n::: section id=notes audience=reviewer title="Internal notes"\nSecret *words*\n:::\nTail';
  const [intro, sec, tail] = /** @type {any[]} */ (parseMarkdown(md));
  assert.equal(intro.tag, 'p');
  assert.equal(sec.tag, 'section');
  assert.equal(sec.attrs['data-section'], 'notes');
  assert.equal(sec.attrs['data-audience'], 'reviewer');
  assert.deepEqual(sec.children[0], { tag: 'h3', attrs: { class: 'section-title' }, children: ['Internal notes'] });
  assert.equal(sec.children[2].tag, 'p');
  assert.deepEqual(tail.children, ['Tail']);
});

test('markup in text stays text; unsafe links lose their target', () => {
  const nodes = /** @type {any[]} */ (parseMarkdown('<img src=x onerror=alert(1)> & <script>'));
  assert.deepEqual(nodes[0].children, ['<img src=x onerror=alert(1)> & <script>']);
  const [bad, good] = /** @type {any[]} */ (inline('[x](javascript:alert(1)) [y](/article?id=2)'))
    .filter((n) => typeof n !== 'string');
  assert.equal(bad.tag, 'span', 'no link for javascript:');
  assert.deepEqual(good.attrs, { href: '/article?id=2' });
  for (const u of ['javascript:alert(1)', 'JaVaScRiPt:x', 'data:text/html,x', '//evil.example', 'vbscript:x', '\u0001javascript:x', 'java\tscript:x']) {
    assert.equal(safeHref(u), null, u);
  }
  for (const u of ['https://example.org/a', 'mailto:a@b.c', '/x', '#top', 'other-page']) assert.equal(safeHref(u), u);
});
