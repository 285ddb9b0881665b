import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";
import { MemoryBudget } from "./memory_budget.ts";

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));

Deno.test("BufferPool hands a given buffer back only on a later macrotask", async () => {
  const pool = new BufferPool(8, 1 << 20, 0);
  const b = new ArrayBuffer(100);
  pool.give(b);
  // Views handed out just before give() may still be written out by continuations queued now.
  await Promise.resolve();
  assert.equal(pool.take(100), undefined);
  await macrotask();
  assert.equal(pool.take(100), b);
  assert.equal(pool.take(100), undefined);
  assert.deepEqual(pool.stats(), { hits: 1, misses: 2, held: 0, bytes: 0 });
});

Deno.test("BufferPool.take() picks the smallest buffer that fits, at most twice the size asked", async () => {
  const pool = new BufferPool(8, 1 << 20, 0);
  const [small, mid, big] = [new ArrayBuffer(100), new ArrayBuffer(150), new ArrayBuffer(400)];
  for (const b of [big, small, mid]) pool.give(b);
  await macrotask();
  assert.equal(pool.take(401), undefined, "none large enough");
  assert.equal(pool.take(120), mid);
  assert.equal(pool.take(40), undefined, "all more than twice as large");
  assert.equal(pool.take(90), small);
  assert.equal(pool.take(90), undefined, "400 bytes is too large for 90");
  assert.equal(pool.take(200), big);
  // acquire() falls back to a fresh buffer of the size asked.
  assert.equal(pool.acquire(64).byteLength, 64);
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

Deno.test("BufferPool with a budget: pooled bytes count against it and go before a refusal", async () => {
  const budget = new MemoryBudget(300);
  const pool = new BufferPool(8, 1 << 20, 0, budget);
  pool.give(new ArrayBuffer(100));
  pool.give(new ArrayBuffer(100));
  await macrotask();
  assert.equal(budget.reserved, 200, "two pooled buffers held inside the budget");
  // A reader wants 200: the pool lets go of the oldest buffer instead of a refusal.
  assert.ok(budget.tryReserve(200));
  assert.deepEqual([budget.reserved, pool.stats().held], [300, 1]);
  // take() hands the bytes back to the reader's own reservation.
  assert.ok(pool.take(100));
  assert.equal(budget.reserved, 200);
  // A buffer that does not fit in the budget is not kept.
  pool.give(new ArrayBuffer(150));
  await macrotask();
  assert.deepEqual([budget.reserved, pool.stats().held], [200, 0]);
  // forceReserve() sheds pooled memory before going over the limit.
  pool.give(new ArrayBuffer(100));
  await macrotask();
  budget.forceReserve(100);
  assert.deepEqual([budget.reserved, pool.stats().held, budget.stats().forcedOverLimitBytes], [
    300,
    0,
    0,
  ]);
});
