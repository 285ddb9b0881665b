/**
 * The CSI conformance suite (csi-sanity v5.4.0, pinned in scripts/tools.sh)
 * against real s3csi processes and a real MinIO.
 *
 * Skips come only from `skips.txt` (tier, regex, reason). The test parses
 * csi-sanity's JUnit report, prints the counts, and fails on any failed spec
 * or on a skipped spec that the skip list does not explain.
 */
import assert from "node:assert/strict";
import { readMountInfo } from "../../internal/fuse/mod.ts";
import { isS3Error } from "../../internal/s3/object_client.ts";
import type { Credentials } from "../../internal/s3/object_client.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { type DriverProcess, logLines, spawnDriver } from "../support/driver.ts";
import {
  assumeRole,
  minioClientConfig,
  minioEnv,
  type MinioServer,
  randomHex,
  startMinio,
  tempDir,
} from "../support/mod.ts";

const HERE = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;

interface Skip {
  tier: string;
  regex: string;
  reason: string;
}

async function skipsFor(tier: string): Promise<Skip[]> {
  const text = await Deno.readTextFile(`${HERE}/skips.txt`);
  return text.split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((l) => {
    const [t, regex, reason] = l.split("\t");
    return { tier: t, regex, reason };
  }).filter((s) => s.tier === tier);
}

async function sanityBinary(): Promise<string> {
  const env = Deno.env.get("CSI_SANITY_BIN");
  if (env) return env;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `source "${REPO}/scripts/tools.sh" && need_csi_sanity >&2 && echo "$CSI_SANITY_BIN"`,
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("Cannot install csi-sanity");
  return new TextDecoder().decode(out.stdout).trim();
}

interface JunitResult {
  total: number;
  passed: number;
  failed: string[];
  /** Skipped specs with csi-sanity's message. */
  skipped: Array<{ name: string; message: string }>;
}

function unescapeXml(s: string): string {
  return s.replaceAll("&#34;", '"').replaceAll("&quot;", '"').replaceAll("&amp;", "&")
    .replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
}

function parseJunit(xml: string): JunitResult {
  const failed: string[] = [];
  const skipped: Array<{ name: string; message: string }> = [];
  let total = 0;
  const re = /<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const name = unescapeXml(m[1]);
    const body = m[3] ?? "";
    total++;
    if (/<failure|<error/.test(body)) failed.push(name);
    else {
      const sk = /<skipped(?: message="([^"]*)")?/.exec(body);
      if (sk) skipped.push({ name, message: unescapeXml(sk[1] ?? "") });
    }
  }
  return { total, failed, skipped, passed: total - failed.length - skipped.length };
}

/** csi-sanity skips specs of optional capabilities the driver does not advertise. */
const NOT_APPLICABLE = /^skipped - .* not supported$/;

export async function runSanity(opts: {
  tier: string;
  endpoint: string;
  controllerEndpoint?: string;
  dir: string;
  secrets?: Credentials;
  /** StorageClass parameters for every CreateVolume (`--csi.testvolumeparameters`). */
  volumeParameters?: Record<string, string>;
  extraArgs?: string[];
}): Promise<JunitResult> {
  const skips = await skipsFor(opts.tier);
  const junit = `${opts.dir}/junit.xml`;
  const args = [
    `--csi.endpoint=${opts.endpoint}`,
    `--csi.mountdir=${opts.dir}/mnt`,
    `--csi.stagingdir=${opts.dir}/stg`,
    `--ginkgo.junit-report=${junit}`,
    "--ginkgo.timeout=20m",
    ...(opts.extraArgs ?? []),
  ];
  if (opts.controllerEndpoint) args.push(`--csi.controllerendpoint=${opts.controllerEndpoint}`);
  if (skips.length > 0) args.push(`--ginkgo.skip=${skips.map((s) => s.regex).join("|")}`);
  if (opts.volumeParameters) {
    const yaml = Object.entries(opts.volumeParameters).map(([k, v]) => `${k}: "${v}"`);
    await Deno.writeTextFile(`${opts.dir}/parameters.yaml`, yaml.join("\n") + "\n");
    args.push(`--csi.testvolumeparameters=${opts.dir}/parameters.yaml`);
  }
  if (opts.secrets) {
    const { accessKeyId, secretAccessKey, sessionToken } = opts.secrets;
    const token = sessionToken ? `, session_token: "${sessionToken}"` : "";
    const s = `{access_key_id: "${accessKeyId}", secret_access_key: "${secretAccessKey}"${token}}`;
    const yaml = [
      "CreateVolumeSecret",
      "DeleteVolumeSecret",
      "ControllerValidateVolumeCapabilitiesSecret",
      "NodePublishVolumeSecret",
    ].map((k) => `${k}: ${s}`).join("\n");
    await Deno.writeTextFile(`${opts.dir}/secrets.yaml`, yaml + "\n");
    args.push(`--csi.secrets=${opts.dir}/secrets.yaml`);
  }
  const out = await new Deno.Command(await sanityBinary(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  let xml = "";
  try {
    xml = await Deno.readTextFile(junit);
  } catch {
    throw new Error(`csi-sanity produced no report:\n${text.slice(-4000)}`);
  }
  if (Deno.env.get("S3CSI_KEEP_SANITY")) await Deno.writeTextFile("/tmp/sanity-last.xml", xml);
  const result = parseJunit(xml);
  const byList = result.skipped.filter((s) => skips.some((k) => new RegExp(k.regex).test(s.name)));
  const notApplicable = result.skipped.filter((s) =>
    !byList.includes(s) && NOT_APPLICABLE.test(s.message)
  );
  const pending = result.skipped.filter((s) => !byList.includes(s) && s.message === "pending");
  const unexplained = result.skipped.filter((s) =>
    !byList.includes(s) && !notApplicable.includes(s) && !pending.includes(s)
  ).map((s) => `${s.name} (${s.message})`);
  console.log(
    `csi-sanity [${opts.tier}]: ${result.total} specs: ${result.passed} passed, ${result.failed.length} failed, ` +
      `${byList.length} skipped by skips.txt, ${notApplicable.length} not applicable (optional capability not advertised), ${pending.length} pending upstream`,
  );
  for (const s of skips) console.log(`  skips.txt: /${s.regex}/ (${s.reason})`);
  if (result.failed.length > 0) {
    console.log(`csi-sanity output (tail):\n${text.slice(-6000)}`);
  }
  assert.deepEqual(result.failed, [], "csi-sanity specs failed");
  assert.deepEqual(unexplained, [], "specs skipped without a reason in skips.txt");
  return result;
}

async function leftoverMounts(dir: string): Promise<string[]> {
  return (await readMountInfo()).map((m) => m.mountPoint).filter((m) => m.startsWith(dir));
}

/** What a tier runs with, besides the MinIO and the driver processes every tier gets. */
interface TierSetup {
  /** The driver processes' environment (their own, driver-level credentials). */
  env: Record<string, string>;
  /** The provisioner and node-publish secrets csi-sanity passes; none = driver credentials. */
  secrets?: Credentials;
  volumeParameters?: Record<string, string>;
}

interface TierRun {
  minio: MinioServer;
  /** Root access to the MinIO, for the test's own checks. */
  s3: AwsObjectClient;
  /** The JSON log lines of the controller and of the node (the same process when combined). */
  controllerLog: Array<Record<string, unknown>>;
  nodeLog: Array<Record<string, unknown>>;
  result: JunitResult;
}

/**
 * Runs csi-sanity against s3csi processes on a fresh MinIO: a controller and
 * a node as two processes (`split`) or one `node --controller`. Every tier
 * checks that no secret reached a log and that no mount is left behind.
 */
async function sanityTier(opts: {
  tier: string;
  split: boolean;
  minPassed: number;
  setup?: (minio: MinioServer, s3: AwsObjectClient) => Promise<Partial<TierSetup>>;
  check?: (run: TierRun) => Promise<void> | void;
}): Promise<void> {
  const minio = await startMinio();
  const s3 = new AwsObjectClient(minioClientConfig(minio));
  const dir = await tempDir("s3csi-sanity-");
  await Deno.mkdir(`${dir}/pods`);
  const setup: TierSetup = { env: minioEnv(minio), ...await opts.setup?.(minio, s3) };
  const common = ["--s3-endpoint-url", minio.endpoint];
  const nodeArgs = ["--kubelet-path", dir, "--node-id", "sanity-node", ...common];
  const drivers: DriverProcess[] = [];
  try {
    const nodeSock = `${dir}/node.sock`;
    let ctlSock: string | undefined;
    if (opts.split) {
      ctlSock = `${dir}/controller.sock`;
      drivers.push(
        await spawnDriver({
          socket: ctlSock,
          args: ["controller", "--endpoint", ctlSock, ...common],
          env: setup.env,
        }),
      );
    }
    drivers.push(
      await spawnDriver({
        socket: nodeSock,
        args: [
          "node",
          ...(opts.split ? [] : ["--controller"]),
          "--endpoint",
          nodeSock,
          ...nodeArgs,
        ],
        env: setup.env,
      }),
    );
    const result = await runSanity({
      tier: opts.tier,
      endpoint: `unix://${nodeSock}`,
      controllerEndpoint: ctlSock ? `unix://${ctlSock}` : undefined,
      dir: `${dir}/pods`,
      secrets: setup.secrets,
      volumeParameters: setup.volumeParameters,
    });
    assert.ok(
      result.passed >= opts.minPassed,
      `expected at least ${opts.minPassed} specs to pass, got ${result.passed}`,
    );
    const secretValues = [minio.secretAccessKey, setup.secrets?.secretAccessKey]
      .concat(setup.secrets?.sessionToken ?? []).filter((v): v is string => !!v);
    for (const d of drivers) {
      for (const v of secretValues) assert.ok(!d.output().includes(v), "a secret reached a log");
    }
    assert.deepEqual(await leftoverMounts(dir), [], "mounts left behind");
    await opts.check?.({
      minio,
      s3,
      controllerLog: logLines(drivers[0].output()),
      nodeLog: logLines(drivers[drivers.length - 1].output()),
      result,
    });
  } finally {
    for (const d of drivers) await d.stop();
    for (const m of await leftoverMounts(dir)) {
      await new Deno.Command("umount", { args: ["-l", m] }).output();
    }
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function messages(log: Array<Record<string, unknown>>, msg: string) {
  return log.filter((l) => l.msg === msg);
}

Deno.test("csi-sanity (split): s3csi controller and s3csi node as separate processes, real MinIO and FUSE", async () => {
  await sanityTier({
    tier: "split",
    split: true,
    minPassed: 25,
    setup: (minio) => Promise.resolve({ secrets: minio }),
  });
});

Deno.test("csi-sanity (combined): s3csi node --controller on one socket runs every spec, real MinIO and FUSE", async () => {
  await sanityTier({
    tier: "combined",
    split: false,
    minPassed: 28,
    setup: (minio) => Promise.resolve({ secrets: minio }),
  });
});

Deno.test("csi-sanity (shared): every volume is a prefix of one existing bucket, driver credentials", async () => {
  const bucket = "sanity-shared";
  await sanityTier({
    tier: "shared",
    split: false,
    minPassed: 28,
    setup: async (_minio, s3) => {
      await s3.createBucket(bucket);
      return { volumeParameters: { bucketNaming: "shared", bucketName: bucket } };
    },
    check: async ({ s3, controllerLog, nodeLog }) => {
      assert.ok(messages(controllerLog, "prefix created").length > 0, "prefix volumes were made");
      assert.deepEqual(messages(controllerLog, "bucket created"), [], "no bucket was made");
      const published = messages(nodeLog, "published");
      assert.ok(published.length > 0, "volumes were published");
      for (const p of published) {
        assert.equal(p.bucket, bucket);
        assert.match(String(p.prefix), /^csi-s3-[0-9a-f-]{36}\/$/);
        assert.equal(p.authenticationSource, "driver");
      }
      const left = await s3.listObjects(bucket, {});
      assert.deepEqual(left.objects.map((o) => o.key), [], "every deleted volume's marker is gone");
      await s3.headBucket(bucket);
    },
  });
});

Deno.test("csi-sanity (temporary credentials): provisioner and node secrets with a session token, driver credentials refused", async () => {
  let temporary: Credentials | undefined;
  const refused = (e: unknown) => isS3Error(e, "AccessDenied");
  await sanityTier({
    tier: "temporary-credentials",
    split: true,
    minPassed: 25,
    setup: async (minio) => {
      temporary = await assumeRole(minio);
      const env = {
        AWS_ACCESS_KEY_ID: `notauser${randomHex(6)}`,
        AWS_SECRET_ACCESS_KEY: randomHex(20),
        AWS_REGION: minio.region,
      };
      return { env, secrets: temporary };
    },
    check: async ({ minio, controllerLog, nodeLog }) => {
      assert.ok(messages(controllerLog, "bucket created").length > 0, "buckets were made");
      const published = messages(nodeLog, "published");
      assert.ok(published.length > 0, "volumes were published");
      for (const p of published) assert.equal(p.authenticationSource, "secret");
      // Nothing else could have worked: the driver's own credentials are refused,
      // and so are the temporary ones without their token.
      const config = minioClientConfig(minio);
      const attempts = [
        { accessKeyId: "notauser", secretAccessKey: randomHex(20) },
        { accessKeyId: temporary!.accessKeyId, secretAccessKey: temporary!.secretAccessKey },
      ];
      for (const credentials of attempts) {
        const client = new AwsObjectClient({ ...config, credentials });
        await assert.rejects(client.createBucket("sanity-probe"), refused);
      }
      const withToken = new AwsObjectClient({ ...config, credentials: temporary });
      await withToken.createBucket("sanity-probe");
    },
  });
});
