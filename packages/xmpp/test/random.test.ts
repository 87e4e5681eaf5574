import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomToken } from '../src/random.ts';

test('randomToken: the asked number of bytes in each encoding, never the same twice across block refills', () => {
  assert.match(randomToken(12, 'base64url'), /^[A-Za-z0-9_-]{16}$/);
  assert.match(randomToken(18, 'base64'), /^[A-Za-z0-9+/]{24}$/);
  assert.match(randomToken(6, 'hex'), /^[0-9a-f]{12}$/);
  const seen = new Set<string>();
  // 3,000 × 12 bytes crosses the 4 KiB block several times.
  for (let i = 0; i < 3000; i++) seen.add(randomToken(12, 'hex'));
  assert.equal(seen.size, 3000);
  // Every byte value turns up: the bytes are not zeroed or reused.
  const bytes = new Set<string>();
  for (let i = 0; i < 2000; i++) bytes.add(randomToken(1, 'hex'));
  assert.ok(bytes.size > 200, `only ${bytes.size} distinct byte values`);
});

test('randomToken: sizes out of range are a RangeError', () => {
  for (const n of [0, -1, 1.5, 257, Number.NaN]) assert.throws(() => randomToken(n, 'hex'), RangeError);
});
