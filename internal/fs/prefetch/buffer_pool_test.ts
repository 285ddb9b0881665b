import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));

Deno.test("BufferPool hands a given buffer back only on a later macrotask, by exact size", async () => {
  const pool = new BufferPool(8, 1 << 20, 0);
  const b = new ArrayBuffer(100);
  pool.give(b);
  // Views handed out just before give() may still be written out by continuations queued now.
  await Promise.resolve();
  assert.equal(pool.take(100), undefined);
  await macrotask();
  assert.equal(pool.take(99), undefined);
  assert.equal(pool.take(100), b);
  assert.equal(pool.take(100), undefined);
  assert.deepEqual(pool.stats(), { hits: 1, misses: 3, held: 0 });
});

Deno.test("BufferPool keeps at most maxBuffers and maxBytes, newest first", async () => {
  const pool = new BufferPool(2, 250, 0);
  const [a, b, c] = [new ArrayBuffer(100), new ArrayBuffer(100), new ArrayBuffer(100)];
  pool.give(a);
  pool.give(b);
  pool.give(c);
  pool.give(new ArrayBuffer(300)); // larger than maxBytes: never kept
  await macrotask();
  assert.equal(pool.stats().held, 2);
  assert.equal(pool.take(100), c);
  assert.equal(pool.take(100), b);
  assert.equal(pool.take(100), undefined);
  const big = new BufferPool(4, 250, 0);
  big.give(new ArrayBuffer(200));
  big.give(new ArrayBuffer(100));
  await macrotask();
  // 300 bytes do not fit in 250: the oldest goes.
  assert.equal(big.stats().held, 1);
  assert.ok(big.take(100));
});

Deno.test("BufferPool ignores detached buffers and buffers under minBytes", async () => {
  const pool = new BufferPool(8, 1 << 20, 64);
  pool.give(new ArrayBuffer(63));
  const b = new ArrayBuffer(64);
  pool.give(b);
  b.transfer();
  const c = new ArrayBuffer(64);
  c.transfer();
  pool.give(c);
  await macrotask();
  assert.equal(pool.stats().held, 0);
});
