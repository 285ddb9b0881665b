import assert from "node:assert/strict";
import { dirname, isInside, normalisePath, removeIfPresent } from "./path.ts";

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

Deno.test("dirname() gives the directory part, / for a name at the root or a bare name", () => {
  assert.equal(dirname("/a/b/c.sock"), "/a/b");
  assert.equal(dirname("/x"), "/");
  assert.equal(dirname("x"), "/");
});

Deno.test("removeIfPresent() removes a file, takes a missing one as done, and reports other errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    await removeIfPresent(`${dir}/f`);
    await assert.rejects(Deno.stat(`${dir}/f`), Deno.errors.NotFound);
    await removeIfPresent(`${dir}/f`);
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeTextFile(`${dir}/d/g`, "x");
    await assert.rejects(removeIfPresent(`${dir}/d`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
