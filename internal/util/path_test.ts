import assert from "node:assert/strict";
import { isInside, normalisePath } from "./path.ts";

Deno.test("normalisePath() resolves dots and slashes lexically", () => {
  assert.equal(normalisePath("/a/./b//../c/"), "/a/c");
  assert.equal(normalisePath("/../../etc"), "/etc");
  assert.equal(normalisePath("/"), "/");
});

Deno.test("isInside() refuses siblings that share a prefix and escapes through ..", () => {
  assert.ok(isInside("/var/lib/kubelet/pods/x", "/var/lib/kubelet"));
  assert.ok(isInside("/var/lib/kubelet", "/var/lib/kubelet/"));
  assert.ok(!isInside("/var/lib/kubelet-evil/x", "/var/lib/kubelet"));
  assert.ok(!isInside("/var/lib/kubelet/../../etc", "/var/lib/kubelet"));
});
