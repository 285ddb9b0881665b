import assert from "node:assert/strict";
import { Errno, FsError } from "./api.ts";
import { WriteMemory } from "./write_memory.ts";

const settled = async (p: Promise<unknown>): Promise<string> => {
  const tag = await Promise.race([
    p.then(() => "granted", (e) => e instanceof FsError ? `errno ${e.errno}` : String(e)),
    new Promise<string>((r) => setTimeout(() => r("waiting"), 20)),
  ]);
  return tag;
};

Deno.test("WriteMemory grants what fits at once and makes the rest wait, first come first served", async () => {
  const m = new WriteMemory(100, { freeBytes: 10, stuckMs: 10_000 });
  assert.equal(await settled(m.reserve(60, "a")), "granted");
  const b = m.reserve(50, "b");
  const c = m.reserve(30, "c");
  // c would fit (60 + 30) but waits behind b: no writer is starved by smaller ones.
  assert.equal(await settled(b), "waiting");
  assert.equal(await settled(c), "waiting");
  m.release(60);
  assert.equal(await settled(b), "granted");
  assert.equal(await settled(c), "granted");
  assert.equal(m.reserved, 80);
  m.release(80);
  assert.equal(m.stats().waits, 2);
});

Deno.test("WriteMemory grants a small first buffer over the limit, and anything when nothing is reserved", async () => {
  const m = new WriteMemory(100, { freeBytes: 10, stuckMs: 10_000 });
  await m.reserve(100, "a");
  assert.equal(await settled(m.reserve(10, "small", true)), "granted");
  assert.equal(m.reserved, 110);
  m.release(110);
  // Larger than the whole budget: granted alone, so one big writer always progresses.
  assert.equal(await settled(m.reserve(500, "huge")), "granted");
  m.release(500);
});

Deno.test("WriteMemory fails a wait with ENOMEM once nothing was released for stuckMs, and not while memory moves", async () => {
  const m = new WriteMemory(100, { stuckMs: 80 });
  await m.reserve(100, "holder");
  const moving = m.reserve(100, "moving");
  // Releases every 40 ms keep the waiter patient past 80 ms.
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 40));
    await m.reserve(1, "blip", true);
    m.release(1);
  }
  assert.equal(await settled(moving), "waiting");
  m.release(100);
  assert.equal(await settled(moving), "granted");
  const stuck = m.reserve(100, "stuck.bin");
  const err = await stuck.then(() => null, (e) => e);
  assert.ok(err instanceof FsError);
  assert.equal(err.errno, Errno.ENOMEM);
  assert.match(err.message, /stuck\.bin.*--max-memory/);
  assert.equal(m.stats().stuck, 1);
  m.release(100);
  assert.equal(m.reserved, 0);
});
