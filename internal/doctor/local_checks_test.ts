import assert from "node:assert/strict";
import { parseMountInfo } from "../fuse/mod.ts";
import { runChecks } from "./check.ts";
import { localChecks, propagation } from "./local_checks.ts";

const MOUNTS = parseMountInfo([
  "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
  "40 27 0:50 / /var/lib/kubelet rw,relatime master:1 - ext4 /dev/vdb rw",
  "41 27 0:51 / /data rw,relatime - ext4 /dev/vdc rw",
].join("\n"));

Deno.test("propagation() is ok on a shared mount, failed on a slave or private one, naming the fix", () => {
  const root = propagation("/opt/kubelet", MOUNTS);
  assert.equal(root.verdict, "ok");
  assert.match(root.reason, /^\/ \(holding \/opt\/kubelet\) is a shared mount \(shared:1\)$/);

  const slave = propagation("/var/lib/kubelet", MOUNTS);
  assert.equal(slave.verdict, "failed");
  assert.match(slave.reason, /^\/var\/lib\/kubelet is a slave mount/);
  assert.match(slave.action!, /mount --make-rshared \/var\/lib\/kubelet/);

  const priv = propagation("/data/kubelet", MOUNTS);
  assert.equal(priv.verdict, "failed");
  assert.match(priv.reason, /^\/data \(holding \/data\/kubelet\) is a private mount/);
});

Deno.test("localChecks() fail on a missing device and kubelet dir, and skip what needs them", async () => {
  const results = await runChecks(localChecks({
    kubeletDir: "/nonexistent/kubelet",
    fuseDevice: "/nonexistent/fuse",
    mountInfo: () => Promise.resolve(""),
  }));
  const byId = new Map(results.map((r) => [r.id, r]));
  assert.equal(byId.get("local.fuse-device")!.verdict, "failed");
  assert.match(byId.get("local.fuse-device")!.reason, /\/nonexistent\/fuse does not exist/);
  assert.equal(byId.get("local.fuse-mount")!.skipped, true);
  assert.equal(byId.get("local.kubelet-dir")!.verdict, "failed");
  assert.equal(byId.get("local.propagation")!.skipped, true);
  assert.equal(byId.get("local.plugin-dirs")!.skipped, true);
});

Deno.test("local.plugin-dirs warns on a missing plugin dir and fails without plugins_registry", async () => {
  const kubelet = await Deno.makeTempDir({ prefix: "s3csi-doctor-kubelet-" });
  try {
    const run = async () =>
      (await runChecks(localChecks({ kubeletDir: kubelet })))
        .find((r) => r.id === "local.plugin-dirs")!;
    let r = await run();
    assert.equal(r.verdict, "failed");
    assert.match(r.reason, /plugins_registry does not exist/);
    await Deno.mkdir(`${kubelet}/plugins_registry`);
    r = await run();
    assert.equal(r.verdict, "warning");
    assert.match(r.reason, /plugins\/s3\.csi\.scality\.com does not exist/);
    await Deno.mkdir(`${kubelet}/plugins/s3.csi.scality.com`, { recursive: true });
    r = await run();
    assert.equal(r.verdict, "ok");
    // The probe file is gone again.
    assert.deepEqual([...Deno.readDirSync(`${kubelet}/plugins_registry`)], []);
  } finally {
    await Deno.remove(kubelet, { recursive: true });
  }
});
