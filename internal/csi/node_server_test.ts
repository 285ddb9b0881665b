import assert from "node:assert/strict";
import { InvalidArgumentError } from "../errors/mod.ts";
import type { Mounter } from "../mounter/mounter.ts";
import { NodeServer, type TargetOps } from "./node_server.ts";

const unused: Mounter & TargetOps = {
  ensureMounted: () => Promise.reject(new Error("not in unit tests")),
  unmount: () => Promise.reject(new Error("not in unit tests")),
  check: () => Promise.resolve("missing"),
  bind: () => Promise.reject(new Error("not in unit tests")),
};

const driver = { accessKeyId: "DRIVERKEY", secretAccessKey: "driver-secret" };
const node = new NodeServer({
  nodeId: "n1",
  kubeletPath: "/var/lib/kubelet/",
  mounter: unused,
  targets: unused,
  driverCredentials: driver,
});
const T = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount";

function req(ctx: Record<string, string>, extra: Record<string, unknown> = {}) {
  return {
    volume_id: "vol-1",
    target_path: T,
    volume_capability: {
      access_type: "mount" as const,
      mount: { fs_type: "", mount_flags: [] as string[], volume_mount_group: "" },
      access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
    },
    volume_context: ctx,
    ...extra,
  };
}

Deno.test("NodeServer.resolve() maps a dynamic shared volume: bucket, prefix, region, driver credentials", async () => {
  const { spec, readOnly } = await node.resolve(
    req({
      bucketName: "shared-b",
      prefix: "csi-s3-x/",
      region: "eu-west-1",
      authenticationSource: "driver",
    }),
    T,
  );
  assert.equal(spec.bucket, "shared-b");
  assert.equal(spec.options.prefix, "csi-s3-x/");
  assert.equal(spec.options.region, "eu-west-1");
  assert.equal(spec.authenticationSource, "driver");
  assert.deepEqual(spec.credentials, driver);
  assert.equal(readOnly, false);
  assert.equal(spec.sourceDir, `/var/lib/kubelet/plugins/s3.csi.scality.com/mnt/${spec.mountId}`);
  assert.equal(spec.stateDir, `/var/lib/kubelet/plugins/s3.csi.scality.com/state/${spec.mountId}`);
});

Deno.test("NodeServer.resolve() nests a prefix option inside the volume's prefix", async () => {
  const r = req({ bucketName: "b-1", prefix: "csi-s3-x/" });
  r.volume_capability.mount.mount_flags = ["prefix logs/"];
  const { spec } = await node.resolve(r, T);
  assert.equal(spec.options.prefix, "csi-s3-x/logs/");
});

Deno.test("NodeServer.resolve() takes node-publish secrets only with authenticationSource secret", async () => {
  const secrets = { access_key_id: "VOLKEY", secret_access_key: "vol-secret" };
  const withSecret = await node.resolve(
    req({ bucketName: "b-1", authenticationSource: "secret" }, { secrets }),
    T,
  );
  assert.equal(withSecret.spec.authenticationSource, "secret");
  assert.equal(withSecret.spec.credentials?.accessKeyId, "VOLKEY");
  // Secrets given to a driver-authenticated volume are ignored.
  const driverSource = await node.resolve(req({ bucketName: "b-1" }, { secrets }), T);
  assert.equal(driverSource.spec.credentials?.accessKeyId, "DRIVERKEY");
  // "secret" without a secret falls back to the driver's credentials (as the seeds document).
  const fallback = await node.resolve(
    req({ bucketName: "b-1", authenticationSource: "secret" }),
    T,
  );
  assert.equal(fallback.spec.authenticationSource, "driver");
  assert.equal(fallback.spec.credentials?.accessKeyId, "DRIVERKEY");
});

Deno.test("NodeServer.resolve() keeps credential values out of the sharing key", async () => {
  const ctx = { bucketName: "b-1", authenticationSource: "secret" };
  const a = await node.resolve(
    req(ctx, { secrets: { access_key_id: "K1", secret_access_key: "S1" } }),
    T,
  );
  const b = await node.resolve(
    req(ctx, { secrets: { access_key_id: "K2", secret_access_key: "S2" } }),
    T,
  );
  assert.equal(a.spec.mountId, b.spec.mountId, "a rotated secret must reuse the running mount");
  const ro = await node.resolve(req(ctx, { readonly: true }), T);
  assert.notEqual(ro.spec.mountId, a.spec.mountId, "read-only is a different mount");
  assert.equal(ro.readOnly, true);
  assert.equal(ro.spec.options.readOnly, true);
});

Deno.test("NodeServer.resolve() and publish() name the field at fault", async () => {
  const cases: Array<[Promise<unknown>, string]> = [
    [node.resolve(req({}), T), "volume_context.bucketName"],
    [node.resolve(req({ bucketName: "Bad_Bucket" }), T), "volume_context.bucketName"],
    [
      node.resolve(req({ bucketName: "b-1", authenticationSource: "iam" }), T),
      "volume_context.authenticationSource",
    ],
    [node.publish({ ...req({ bucketName: "b-1" }), target_path: "/tmp/x" }), "target_path"],
    [node.publish({ ...req({ bucketName: "b-1" }), target_path: "relative/x" }), "target_path"],
    [
      node.publish({
        ...req({ bucketName: "b-1" }),
        target_path: "/var/lib/kubelet/plugins/s3.csi.scality.com/mnt/x",
      }),
      "target_path",
    ],
    [node.publish({ ...req({ bucketName: "b-1" }), volume_id: "" }), "volume_id"],
    [
      node.publish({ ...req({ bucketName: "b-1" }), volume_capability: undefined }),
      "volume_capability",
    ],
  ];
  for (const [p, fieldName] of cases) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(err.field, fieldName);
      return true;
    });
  }
});
