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
import { spawnDriver } from "../support/driver.ts";
import { minioEnv, startMinio, tempDir } from "../support/mod.ts";

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
  secrets?: { accessKeyId: string; secretAccessKey: string };
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
  if (opts.secrets) {
    const s =
      `{access_key_id: "${opts.secrets.accessKeyId}", secret_access_key: "${opts.secrets.secretAccessKey}"}`;
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

Deno.test("csi-sanity (split): s3csi controller and s3csi node as separate processes, real MinIO and FUSE", async () => {
  const minio = await startMinio();
  const dir = await tempDir("s3csi-sanity-");
  await Deno.mkdir(`${dir}/pods`);
  const ctlSock = `${dir}/controller.sock`;
  const nodeSock = `${dir}/node.sock`;
  const common = ["--s3-endpoint-url", minio.endpoint];
  const controller = await spawnDriver({
    socket: ctlSock,
    args: ["controller", "--endpoint", ctlSock, ...common],
    env: minioEnv(minio),
  });
  const node = await spawnDriver({
    socket: nodeSock,
    args: [
      "node",
      "--endpoint",
      nodeSock,
      "--kubelet-path",
      dir,
      "--node-id",
      "sanity-node",
      ...common,
    ],
    env: minioEnv(minio),
  });
  try {
    const r = await runSanity({
      tier: "split",
      endpoint: `unix://${nodeSock}`,
      controllerEndpoint: `unix://${ctlSock}`,
      dir: `${dir}/pods`,
      secrets: minio,
    });
    assert.ok(
      r.passed >= 25,
      `expected the Identity, Controller and Node specs to run, got ${r.passed}`,
    );
    for (const d of [controller, node]) {
      assert.ok(!d.output().includes(minio.secretAccessKey), "a secret reached a log");
    }
    assert.deepEqual(await leftoverMounts(dir), [], "mounts left behind");
  } finally {
    await controller.stop();
    await node.stop();
    for (const m of await leftoverMounts(dir)) {
      await new Deno.Command("umount", { args: ["-l", m] }).output();
    }
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("csi-sanity (combined): s3csi node --controller on one socket runs every spec, real MinIO and FUSE", async () => {
  const minio = await startMinio();
  const dir = await tempDir("s3csi-sanity-");
  await Deno.mkdir(`${dir}/pods`);
  const sock = `${dir}/csi.sock`;
  const driver = await spawnDriver({
    socket: sock,
    args: [
      "node",
      "--controller",
      "--endpoint",
      sock,
      "--kubelet-path",
      dir,
      "--s3-endpoint-url",
      minio.endpoint,
    ],
    env: minioEnv(minio),
  });
  try {
    const r = await runSanity({
      tier: "combined",
      endpoint: `unix://${sock}`,
      dir: `${dir}/pods`,
      secrets: minio,
    });
    assert.ok(r.passed >= 28, `expected every applicable spec to run, got ${r.passed}`);
    assert.ok(!driver.output().includes(minio.secretAccessKey), "a secret reached the log");
    assert.deepEqual(await leftoverMounts(dir), [], "mounts left behind");
  } finally {
    await driver.stop();
    for (const m of await leftoverMounts(dir)) {
      await new Deno.Command("umount", { args: ["-l", m] }).output();
    }
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
