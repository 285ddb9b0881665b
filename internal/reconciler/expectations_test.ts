import assert from "node:assert/strict";
import { type CacheLookup, Expectations } from "./expectations.ts";

type Meta = { uid?: string; resourceVersion?: string; deletionTimestamp?: string };

function cache(objects: Record<string, Meta>): CacheLookup {
  return (_kind, name) => objects[name] ? { metadata: objects[name] } : undefined;
}

Deno.test("expectations: a key waits until the cache shows each write", () => {
  const x = new Expectations(1000);
  x.expect("k", { kind: "Pod", name: "p", op: "create" }, 0);
  x.expect("k", { kind: "A", name: "a", op: "update", fromVersion: "5" }, 0);
  x.expect("k", { kind: "Pod", name: "old", op: "delete", uid: "u1" }, 0);
  const before = cache({ a: { resourceVersion: "5" }, old: { uid: "u1" } });
  assert.equal(x.satisfied("k", before, 10), false);
  assert.equal(x.satisfied("other", before, 10), true, "other keys are not held");
  const created = cache({ p: {}, a: { resourceVersion: "5" }, old: { uid: "u1" } });
  assert.equal(x.satisfied("k", created, 10), false, "the update is not seen yet");
  const updated = cache({ p: {}, a: { resourceVersion: "6" }, old: { uid: "u1" } });
  assert.equal(x.satisfied("k", updated, 10), false, "the delete is not seen yet");
  const terminating = cache({
    p: {},
    a: { resourceVersion: "6" },
    old: { uid: "u1", deletionTimestamp: "t" },
  });
  assert.equal(x.satisfied("k", terminating, 10), true, "a graceful deletion counts once it began");
});

Deno.test("expectations: one never met is given up after its time", () => {
  const x = new Expectations(1000);
  x.expect("k", { kind: "Pod", name: "p", op: "create" }, 0);
  const expired: string[] = [];
  assert.equal(x.satisfied("k", cache({}), 999, (e) => expired.push(e.name)), false);
  assert.equal(x.satisfied("k", cache({}), 1000, (e) => expired.push(e.name)), true);
  assert.deepEqual(expired, ["p"]);
  assert.equal(x.satisfied("k", cache({}), 1001), true, "forgotten");
});
