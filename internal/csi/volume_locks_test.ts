import assert from "node:assert/strict";
import { AbortedError } from "../errors/mod.ts";
import { fingerprint, VolumeLocks } from "./volume_locks.ts";

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
