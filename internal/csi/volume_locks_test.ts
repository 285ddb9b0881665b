import assert from "node:assert/strict";
import { AbortedError } from "../errors/mod.ts";
import { fingerprint, SerialQueue, VolumeLocks } from "./volume_locks.ts";

Deno.test("VolumeLocks.run() shares identical concurrent calls and aborts different ones", async () => {
  const locks = new VolumeLocks();
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const work = async () => {
    runs++;
    await gate;
    return "done";
  };
  const a = locks.run("vol", "create", "fp-1", work);
  const b = locks.run("vol", "create", "fp-1", work);
  await assert.rejects(locks.run("vol", "delete", "fp-2", work), (err: unknown) => {
    assert.ok(err instanceof AbortedError);
    assert.match(err.message, /already in progress/);
    return true;
  });
  // Another volume is independent.
  const other = locks.run("vol-2", "create", "fp-1", () => Promise.resolve("other"));
  release();
  assert.deepEqual(await Promise.all([a, b, other]), ["done", "done", "other"]);
  assert.equal(runs, 1);
  assert.equal(locks.size, 0);
  // Once finished, the key is free again, also after a failure.
  await assert.rejects(locks.run("vol", "x", "f", () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await locks.run("vol", "x", "g", () => Promise.resolve(1)), 1);
});

Deno.test("fingerprint() does not depend on key order", () => {
  assert.equal(fingerprint({ a: 1, b: { c: 2, d: 3 } }), fingerprint({ b: { d: 3, c: 2 }, a: 1 }));
  assert.notEqual(fingerprint({ a: 1 }), fingerprint({ a: 2 }));
});

Deno.test("SerialQueue: calls on one key run one after another in order, a failure does not stop the next; keys are independent", async () => {
  const q = new SerialQueue();
  const log: string[] = [];
  const step = (name: string, ms: number, fail = false) => () =>
    new Promise<string>((resolve, reject) =>
      setTimeout(() => {
        log.push(name);
        fail ? reject(new Error(name)) : resolve(name);
      }, ms)
    );
  const a = q.run("k", step("a", 30));
  const b = q.run("k", step("b", 1, true));
  const c = q.run("k", step("c", 1));
  const other = q.run("j", step("other", 1));
  assert.equal(await a, "a");
  await assert.rejects(b, /b/);
  assert.equal(await c, "c");
  assert.equal(await other, "other");
  assert.deepEqual(log, ["other", "a", "b", "c"]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(q.size, 0, "nothing kept once idle");
});
