import assert from "node:assert/strict";
import { MemoryBudget } from "./memory_budget.ts";

Deno.test("MemoryBudget.tryReserve() refuses reservations beyond the limit", () => {
  const b = new MemoryBudget(100);
  assert.equal(b.tryReserve(60), true);
  assert.equal(b.tryReserve(50), false);
  assert.equal(b.tryReserve(40), true);
  assert.equal(b.reserved, 100);
  assert.equal(b.available, 0);
  assert.equal(b.stats().refusals, 1);
});

Deno.test("MemoryBudget.forceReserve() goes over the limit and tracks the peak", () => {
  const b = new MemoryBudget(100);
  b.tryReserve(90);
  b.forceReserve(30);
  assert.equal(b.reserved, 120);
  assert.equal(b.stats().forcedOverLimitBytes, 20);
  b.release(120);
  assert.equal(b.reserved, 0);
  assert.equal(b.peak, 120);
  b.resetPeak();
  assert.equal(b.peak, 0);
});

Deno.test("MemoryBudget.release() throws on releasing more than reserved", () => {
  const b = new MemoryBudget(100);
  b.tryReserve(10);
  assert.throws(() => b.release(11), /not reserved/);
  assert.equal(b.reserved, 0);
});

Deno.test("MemoryBudget.fairShare divides the budget among registered readers", () => {
  const b = new MemoryBudget(120);
  assert.equal(b.fairShare, 120);
  const u1 = b.registerReader();
  const u2 = b.registerReader();
  const u3 = b.registerReader();
  assert.equal(b.fairShare, 40);
  u1();
  u1(); // idempotent
  assert.equal(b.readers, 2);
  assert.equal(b.fairShare, 60);
  u2();
  u3();
  assert.equal(b.readers, 0);
});

Deno.test("MemoryBudget() rejects an invalid size", () => {
  assert.throws(() => new MemoryBudget(0), RangeError);
  assert.throws(() => new MemoryBudget(Number.NaN), RangeError);
});
