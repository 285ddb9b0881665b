import assert from "node:assert/strict";
import { FakeClock, settle } from "./clock.ts";
import { WorkQueue } from "./work_queue.ts";

Deno.test("work queue: a key added many times is processed once", async () => {
  const q = new WorkQueue(new FakeClock(), { baseMs: 100, maxMs: 1000 });
  const seen: string[] = [];
  ["a", "b", "a", "a"].forEach((k) => q.add(k));
  const done = q.run((k) => Promise.resolve(void seen.push(k)), 2);
  await settle();
  q.close();
  await done;
  assert.deepEqual(seen.sort(), ["a", "b"]);
});

Deno.test("work queue: one key never runs twice at once; added while running, it runs again", async () => {
  const q = new WorkQueue(new FakeClock(), { baseMs: 100, maxMs: 1000 });
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const done = q.run(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    if (runs === 1) await gate;
    running--;
  }, 4);
  q.add("k");
  await settle();
  q.add("k");
  q.add("k");
  await settle();
  assert.equal(runs, 1, "waits for the running one");
  release();
  await settle();
  assert.equal(runs, 2, "then runs once more for the adds made meanwhile");
  assert.equal(maxRunning, 1);
  q.close();
  await done;
});

Deno.test("work queue: retries back off exponentially per key, forget resets", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue(clock, { baseMs: 100, maxMs: 350 });
  assert.deepEqual([q.retry("k"), q.retry("x")], [100, 100]);
  assert.equal(q.length, 0);
  await clock.advance(99);
  assert.equal(q.length, 0);
  await clock.advance(1);
  assert.equal(q.length, 2);
  assert.equal(q.retry("k"), 200);
  assert.equal(q.retry("k"), 350, "capped");
  await clock.advance(200);
  assert.equal(q.length, 2, "one timer per key: k was already queued");
  q.forget("k");
  assert.equal(q.retry("k"), 100);
  q.close();
});
