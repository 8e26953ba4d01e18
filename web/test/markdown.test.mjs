// The preview's Markdown parser (pure; the DOM half only uses
// createElement/textContent) and the review page's line diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parse, inline, safeHref, sectionAttrs, lineDiff } from '../app/markdown.js';

test('blocks: headings, paragraphs, lists, code, quotes, rules', () => {
  const b = parse('# Title\n\nOne\nline two\n\n- a\n- b\n\n1. x\n2. y\n\n```\n<b>raw</b>\n```\n\n> quoted\n\n---');
  assert.deepEqual(b.map((x) => x.type), ['heading', 'para', 'list', 'list', 'code', 'quote', 'hr']);
  assert.deepEqual(b[1], { type: 'para', inlines: [{ type: 'text', text: 'One line two' }] });
  assert.equal(/** @type {any} */ (b[2]).ordered, false);
  assert.equal(/** @type {any} */ (b[3]).ordered, true);
  assert.equal(/** @type {any} */ (b[4]).text, '<b>raw</b>');
});

test('inline: strong, emphasis, code, links; markup stays text', () => {
  assert.deepEqual(inline('a **b** *c* `<d>` [e](https://x.test/)'), [
    { type: 'text', text: 'a ' },
    { type: 'strong', children: [{ type: 'text', text: 'b' }] },
    { type: 'text', text: ' ' },
    { type: 'em', children: [{ type: 'text', text: 'c' }] },
    { type: 'text', text: ' ' },
    { type: 'code', text: '<d>' },
    { type: 'text', text: ' ' },
    { type: 'link', href: 'https://x.test/', children: [{ type: 'text', text: 'e' }] },
  ]);
  assert.deepEqual(inline('<script>alert(1)</script>'), [{ type: 'text', text: '<script>alert(1)</script>' }]);
  assert.deepEqual(inline('snake_case_name'), [{ type: 'text', text: 'snake_case_name' }]);
});

test('unsafe link targets become plain text', () => {
  assert.deepEqual(inline('[x](javascript:alert(1))'), [{ type: 'text', text: 'x' }, { type: 'text', text: ')' }]);
  for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:x', 'data:text/html,x', 'vbscript:x', '//evil.test/']) {
    assert.equal(safeHref(bad), '', bad);
  }
  for (const good of ['https://a.test/x', 'http://a', 'mailto:a@b.test', '/article?id=3', '#top', 'other-page']) {
    assert.equal(safeHref(good), good, good);
  }
});

test('section blocks carry id, audience and title, and nest their text', () => {
  const b = parse('Intro\n\n::: section id=internal audience=reviewer,auditor title="Internal notes"\nOnly **them**.\n:::\nAfter');
  assert.deepEqual(b.map((x) => x.type), ['para', 'section', 'para']);
  const s = /** @type {any} */ (b[1]);
  assert.equal(s.id, 'internal');
  assert.deepEqual(s.audience, ['reviewer', 'auditor']);
  assert.equal(s.title, 'Internal notes');
  assert.equal(s.blocks[0].type, 'para');
  assert.deepEqual(sectionAttrs(' id=a title="x y"'), { id: 'a', title: 'x y' });
  // An unclosed section runs to the end (as the server reads it).
  assert.equal(/** @type {any} */ (parse('::: section id=x\ntext')[0]).blocks.length, 1);
});

test('line diff keeps common lines and marks the rest', () => {
  assert.deepEqual(lineDiff('a\nb\nc', 'a\nc\nd'), [
    { op: ' ', line: 'a' }, { op: '-', line: 'b' }, { op: ' ', line: 'c' }, { op: '+', line: 'd' },
  ]);
  assert.deepEqual(lineDiff('', 'x'), [{ op: '+', line: 'x' }]);
  assert.deepEqual(lineDiff('same', 'same'), [{ op: ' ', line: 'same' }]);
});
