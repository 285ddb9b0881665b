/**
 * Hostile input to a real `s3csi node --controller`, case by case: target
 * paths that leave the kubelet directory (`..`, a symlink that leads out, a
 * file where a directory goes), volume IDs that are paths or junk, and
 * mount options that try to reach the host. Each is refused with
 * INVALID_ARGUMENT naming the field, and nothing is created outside the
 * kubelet directory (a decoy directory the symlinks point at is checked
 * before and after).
 */
import assert from "node:assert/strict";
import { canMount } from "../mount/harness.ts";
import { mountCapability } from "../support/csi_client.ts";
import { tempDir } from "../support/mod.ts";
import { publishReq, target, withNode } from "../support/node_env.ts";

async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test({
  name:
    "attacks: hostile target paths, volume IDs and mount options are INVALID_ARGUMENT naming the field, and nothing is created outside",
  ignore: !canMount,
  sanitizeResources: false,
  async fn() {
    const outside = await tempDir("s3csi-outside-");
    try {
      await withNode(async ({ csi, s3, kubelet }) => {
        await s3.createBucket("attack-bucket");
        const ctx = { bucketName: "attack-bucket" };
        // A pod directory that is a symlink out of the kubelet directory, and a file where a directory goes.
        await Deno.mkdir(`${kubelet}/pods`, { recursive: true });
        await Deno.symlink(outside, `${kubelet}/pods/evil`);
        await Deno.mkdir(`${kubelet}/pods/filepod/volumes/kubernetes.io~csi/pv-1`, {
          recursive: true,
        });
        await Deno.writeTextFile(
          `${kubelet}/pods/filepod/volumes/kubernetes.io~csi/pv-1/mount`,
          "x",
        );
        const ok = target(kubelet, "pod-ok");
        const cases: [string, Record<string, unknown>, RegExp][] = [
          ["target outside", publishReq("v", ctx, "/etc/s3csi-attack"), /target_path/],
          ["target with ..", publishReq("v", ctx, `${kubelet}/pods/../../etc/x`), /target_path/],
          ["relative target", publishReq("v", ctx, "pods/x/mount"), /target_path/],
          [
            "target through a symlink out",
            publishReq("v", ctx, `${kubelet}/pods/evil/volumes/kubernetes.io~csi/pv-1/mount`),
            /target_path/,
          ],
          [
            "target that is a file",
            publishReq("v", ctx, `${kubelet}/pods/filepod/volumes/kubernetes.io~csi/pv-1/mount`),
            /target_path/,
          ],
          ["volume ID with NUL", publishReq("v\u0000x", ctx, ok), /volume_id/],
          ["bucket with /", publishReq("v", { bucketName: "a/b" }, ok), /bucketName/],
          ["bucket ..", publishReq("v", { bucketName: ".." }, ok), /bucketName/],
          ["bucket 10 KiB", publishReq("v", { bucketName: "b".repeat(10240) }, ok), /bucketName/],
          ...[
            "cache /etc",
            "cache=../../../etc",
            "prefix ../",
            "prefix=/abs/",
            "log-file /etc/passwd",
            "endpoint-url=http://169.254.169.254",
            "allow-other\n--cache=/etc",
          ].map((flag): [string, Record<string, unknown>, RegExp] => [
            `mount option ${JSON.stringify(flag)}`,
            publishReq("v", ctx, ok, { volume_capability: mountCapability(undefined, [flag]) }),
            /mount_flags|mount option/,
          ]),
        ];
        for (const [what, req, field] of cases) {
          const err = await csi.code("Node", "NodePublishVolume", req).catch((e) => {
            throw new Error(`${what}: ${e.message}`);
          });
          assert.equal(err.code, "INVALID_ARGUMENT", `${what}: ${err.code} ${err.details}`);
          assert.match(err.details, field, `${what} names the field: ${err.details}`);
        }
        for (
          const id of ["../etc", "a/../../b", "csi-s3-\u0000", "x".repeat(10240), "UPPER/csi-s3-x"]
        ) {
          const v = await csi.code("Controller", "ValidateVolumeCapabilities", {
            volume_id: id,
            volume_capabilities: [mountCapability()],
          });
          assert.ok(["NOT_FOUND", "INVALID_ARGUMENT"].includes(v.code), `${id}: ${v.code}`);
        }
        assert.deepEqual(await entries(outside), [], "nothing created through the symlink");
        await Deno.stat("/etc/s3csi-attack").then(
          () => assert.fail("created /etc/s3csi-attack"),
          () => {},
        );
      });
    } finally {
      await Deno.remove(outside, { recursive: true }).catch(() => {});
    }
  },
});
