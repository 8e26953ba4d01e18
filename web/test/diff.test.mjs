// The review page's line diff.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { lineDiff } from '../app/diff.js';

test('line diff keeps common lines and marks the rest', () => {
  assert.deepEqual(lineDiff('a\nb\nc', 'a\nc\nd'), [
    { op: ' ', line: 'a' }, { op: '-', line: 'b' }, { op: ' ', line: 'c' }, { op: '+', line: 'd' },
  ]);
  assert.deepEqual(lineDiff('', 'x'), [{ op: '+', line: 'x' }]);
  assert.deepEqual(lineDiff('same', 'same'), [{ op: ' ', line: 'same' }]);
});
