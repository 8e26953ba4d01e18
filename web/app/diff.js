// @ts-check
/**
 * @file A line diff for the review page (a draft against its published
 * version): longest common subsequence over lines, pure so that node's test
 * runner checks it.
 */

/**
 * The lines of `before` and `after` as kept (' '), removed ('-') and added ('+').
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
