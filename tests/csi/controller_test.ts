/**
 * The controller role against a real MinIO, over its real gRPC socket:
 * idempotent and concurrent provisioning, safe deletion, parameter and secret
 * validation, and log hygiene.
 */
import assert from "node:assert/strict";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { CsiClient, mountCapability } from "../support/csi_client.ts";
import { type DriverProcess, logLines, spawnDriver } from "../support/driver.ts";
import {
  listBucketNames,
  minioClientConfig,
  minioEnv,
  type MinioServer,
  startMinio,
  tempDir,
} from "../support/mod.ts";

interface Ctx {
  minio: MinioServer;
  driver: DriverProcess;
  csi: CsiClient;
  s3: AwsObjectClient;
  dir: string;
}

async function withController(
  fn: (ctx: Ctx) => Promise<void>,
  extraArgs: string[] = [],
): Promise<void> {
  const minio = await startMinio();
  const dir = await tempDir("s3csi-ctl-");
  const socket = `${dir}/csi.sock`;
  const driver = await spawnDriver({
    socket,
    args: [
      "controller",
      "--endpoint",
      `unix://${socket}`,
      "--s3-endpoint-url",
      minio.endpoint,
      "--log-level",
      "debug",
      ...extraArgs,
    ],
    env: minioEnv(minio),
  });
  const csi = new CsiClient(socket);
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  try {
    await fn({ minio, driver, csi, s3, dir });
  } finally {
    csi.close();
    await driver.stop();
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function createReq(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    capacity_range: { required_bytes: 1 << 30 },
    volume_capabilities: [mountCapability()],
    parameters: {},
    ...extra,
  };
}

Deno.test("CreateVolume() sent 10 times concurrently with one name yields one bucket and one volume ID", async () => {
  await withController(async ({ minio, csi }) => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 10 },
        () => csi.call("Controller", "CreateVolume", createReq("pvc-concurrent")),
      ),
    );
    const ids = new Set<string>();
    for (const r of results) {
      if (r.status === "fulfilled") ids.add(r.value.volume.volume_id);
      else assert.equal((r.reason as { code: number }).code, 10, "only ABORTED may fail");
    }
    assert.equal(ids.size, 1);
    const [id] = [...ids];
    assert.match(
      id,
      /^csi-s3-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const buckets = (await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-"));
    assert.deepEqual(buckets, [id]);
    // A later retry returns the same volume, still one bucket.
    const again = await csi.call("Controller", "CreateVolume", createReq("pvc-concurrent"));
    assert.equal(again.volume.volume_id, id);
    assert.equal(again.volume.volume_context.bucketName, id);
    assert.equal(again.volume.volume_context.authenticationSource, "driver");
    assert.equal((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")).length, 1);
  });
});

Deno.test("CreateVolume() with the same name and an incompatible capacity is ALREADY_EXISTS", async () => {
  await withController(async ({ csi }) => {
    await csi.call("Controller", "CreateVolume", createReq("pvc-cap"));
    const err = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-cap", { capacity_range: { required_bytes: 2 * 2 ** 30 } }),
    );
    assert.equal(err.code, "ALREADY_EXISTS");
    assert.match(err.details, /capacity/);
  });
});

Deno.test("DeleteVolume() keeps a bucket that holds an object and returns OK", async () => {
  await withController(async ({ minio, csi, s3, driver }) => {
    const { volume } = await csi.call("Controller", "CreateVolume", createReq("pvc-keep"));
    const body = new TextEncoder().encode("precious");
    await s3.putObject(volume.volume_id, "data/file.txt", body);
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
    assert.ok((await listBucketNames(minio)).includes(volume.volume_id), "bucket must survive");
    const got = await s3.getObject(volume.volume_id, "data/file.txt");
    assert.deepEqual(got.body, body);
    const warn = logLines(driver.output()).find((l) =>
      l.level === "warn" && String(l.msg).includes("not empty")
    );
    assert.ok(warn, "a warning names the kept bucket");
    assert.equal(warn.objects, "1");
    // Once emptied, a retried delete removes it.
    await s3.deleteObject(volume.volume_id, "data/file.txt");
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
    assert.ok(!(await listBucketNames(minio)).includes(volume.volume_id));
    // Deleting again, or deleting IDs this driver never made, succeeds.
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
    await csi.call("Controller", "DeleteVolume", { volume_id: "fake-vol-id" });
  });
});

Deno.test("CreateVolume() refuses unknown parameters and bad shared-mode parameters with INVALID_ARGUMENT", async () => {
  await withController(async ({ csi }) => {
    let err = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-x", { parameters: { bucketPrefix: "abc" } }),
    );
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.details, /"bucketPrefix"/);
    err = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-x", { parameters: { bucketNaming: "shared" } }),
    );
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.details, /"bucketName"/);
    err = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-x", { parameters: { bucketNaming: "shared", bucketName: "Bad_Name" } }),
    );
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.details, /"bucketName"/);
    err = await csi.code("Controller", "CreateVolume", {
      ...createReq("pvc-x"),
      volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
    });
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.details, /block/);
    err = await csi.code("Controller", "CreateVolume", createReq(""));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.details, /name/);
  });
});

Deno.test("CreateVolume() in shared mode makes a prefix volume that DeleteVolume removes only when empty", async () => {
  await withController(async ({ csi, s3 }) => {
    await s3.createBucket("shared-bucket");
    const params = { bucketNaming: "shared", bucketName: "shared-bucket" };
    const { volume } = await csi.call(
      "Controller",
      "CreateVolume",
      createReq("pvc-shared", { parameters: params }),
    );
    assert.match(volume.volume_id, /^shared-bucket\/csi-s3-/);
    assert.equal(volume.volume_context.bucketName, "shared-bucket");
    assert.equal(volume.volume_context.prefix, volume.volume_id.split("/")[1] + "/");
    const prefix = volume.volume_context.prefix;
    const ok = await csi.call("Controller", "ValidateVolumeCapabilities", {
      volume_id: volume.volume_id,
      volume_capabilities: [mountCapability()],
    });
    assert.ok(ok.confirmed);
    await s3.putObject("shared-bucket", `${prefix}keep.txt`, new Uint8Array([1]));
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
    assert.ok(await s3.headObject("shared-bucket", `${prefix}keep.txt`), "user data survives");
    await s3.deleteObject("shared-bucket", `${prefix}keep.txt`);
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
    assert.equal(await s3.headObject("shared-bucket", prefix), null, "marker removed");
    const gone = await csi.code("Controller", "ValidateVolumeCapabilities", {
      volume_id: volume.volume_id,
      volume_capabilities: [mountCapability()],
    });
    assert.equal(gone.code, "NOT_FOUND");
    await s3.headBucket("shared-bucket"); // the shared bucket is never deleted
  });
});

Deno.test("CreateVolume() in shared mode records the volume on its marker: same name and another capacity is ALREADY_EXISTS", async () => {
  await withController(async ({ csi, s3 }) => {
    await s3.createBucket("shared-bucket");
    const GiB = 2 ** 30;
    const create = (required: number, limit = 0) => ({
      method: "CreateVolume",
      req: createReq("pvc-shared-cap", {
        parameters: { bucketNaming: "shared", bucketName: "shared-bucket" },
        capacity_range: { required_bytes: required, limit_bytes: limit },
      }),
    });
    const call = (c: ReturnType<typeof create>) => csi.call("Controller", c.method, c.req);
    const code = (c: ReturnType<typeof create>) => csi.code("Controller", c.method, c.req);
    const first = await call(create(GiB));
    const prefix = first.volume.volume_context.prefix;
    const marker = await s3.headObject("shared-bucket", prefix);
    assert.equal(marker?.size, 0);
    assert.equal(marker?.metadata?.["s3csi-volume-name"], "pvc-shared-cap");
    assert.equal(marker?.metadata?.["s3csi-capacity-bytes"], String(GiB));
    assert.deepEqual(await call(create(GiB)), first);
    const err = await code(create(2 * GiB));
    assert.equal(err.code, "ALREADY_EXISTS");
    assert.match(err.details, /capacity/);
    // A bare marker, as an older version left it, is adopted and checked from then on.
    await s3.putObject("shared-bucket", prefix, new Uint8Array(0));
    const adopted = await call(create(2 * GiB));
    assert.equal(adopted.volume.volume_id, first.volume.volume_id);
    const recorded = await s3.headObject("shared-bucket", prefix);
    assert.equal(recorded?.metadata?.["s3csi-capacity-bytes"], String(2 * GiB));
    assert.equal((await code(create(GiB, GiB))).code, "ALREADY_EXISTS");
  });
});

Deno.test("CreateVolume() with provisioner secrets uses them and never logs their values", async () => {
  await withController(async ({ minio, csi, driver }) => {
    const secrets = { access_key_id: minio.accessKeyId, secret_access_key: minio.secretAccessKey };
    const { volume } = await csi.call(
      "Controller",
      "CreateVolume",
      createReq("pvc-secret", { secrets }),
    );
    assert.equal(volume.volume_context.authenticationSource, "secret");
    // Wrong secret: the error is clear and carries no secret either.
    const bad = { access_key_id: "AKIAWRONGWRONG", secret_access_key: "wrong-secret-value-123456" };
    const err = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-bad", { secrets: bad }),
    );
    assert.equal(err.code, "PERMISSION_DENIED");
    assert.ok(!err.details.includes("wrong-secret-value-123456"));
    // Missing keys name the key.
    const partial = await csi.code(
      "Controller",
      "CreateVolume",
      createReq("pvc-partial", { secrets: { access_key_id: "x" } }),
    );
    assert.equal(partial.code, "INVALID_ARGUMENT");
    assert.match(partial.details, /secret_access_key/);
    await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id, secrets });
    const out = driver.output();
    assert.ok(out.includes('"method":"CreateVolume"'), "debug log captured the requests");
    assert.ok(out.includes("[redacted]"), "secrets were redacted");
    assert.ok(!out.includes(minio.secretAccessKey), "provisioner secret leaked into the log");
    assert.ok(!out.includes("wrong-secret-value-123456"), "bad secret leaked into the log");
  });
});

Deno.test("DeleteVolume() returns UNAVAILABLE when S3 cannot be reached, so the provisioner retries", async () => {
  const dir = await tempDir("s3csi-ctl-");
  const socket = `${dir}/csi.sock`;
  const driver = await spawnDriver({
    socket,
    args: [
      "controller",
      "--endpoint",
      socket,
      "--s3-endpoint-url",
      "http://127.0.0.1:9",
      "--aws-max-attempts",
      "1",
    ],
    env: { AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" },
  });
  const csi = new CsiClient(socket);
  try {
    const err = await csi.code("Controller", "DeleteVolume", {
      volume_id: "csi-s3-2b3a6e38-0b4e-5d2c-9b8e-9a1c8f0e7d6a",
    });
    assert.equal(err.code, "UNAVAILABLE");
    const probe = await csi.call("Identity", "Probe", {});
    assert.equal(probe.ready.value, false);
  } finally {
    csi.close();
    assert.equal(await driver.stop(), 0, "SIGTERM is a clean exit");
    await assert.rejects(Deno.stat(socket), "socket removed on shutdown");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Identity reports the driver name and CONTROLLER_SERVICE, and Probe is ready with S3 up", async () => {
  await withController(async ({ csi }) => {
    const info = await csi.call("Identity", "GetPluginInfo", {});
    assert.equal(info.name, "s3.csi.scality.com");
    const caps = await csi.call("Identity", "GetPluginCapabilities", {});
    assert.deepEqual(caps.capabilities.map((c: { service: { type: string } }) => c.service.type), [
      "CONTROLLER_SERVICE",
    ]);
    const probe = await csi.call("Identity", "Probe", {});
    assert.equal(probe.ready.value, true);
    const ctl = await csi.call("Controller", "ControllerGetCapabilities", {});
    assert.deepEqual(ctl.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type), [
      "CREATE_DELETE_VOLUME",
    ]);
  });
});
