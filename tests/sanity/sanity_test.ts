/**
 * The CSI conformance suite (csi-sanity v5.4.0, pinned in scripts/tools.sh)
 * against real s3csi processes and a real MinIO.
 *
 * Skips come only from `skips.txt` (tier, regex, reason). The test parses
 * csi-sanity's JUnit report, prints the counts, and fails on any failed spec
 * or on a skipped spec that the skip list does not explain.
 */
import assert from "node:assert/strict";
import { spawnDriver } from "../support/driver.ts";
import { startMinio, tempDir } from "../support/mod.ts";

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
  failed: string[];
  skipped: string[];
  passed: number;
}

function parseJunit(xml: string): JunitResult {
  const failed: string[] = [];
  const skipped: string[] = [];
  let total = 0;
  const re = /<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const name = m[1].replaceAll("&#34;", '"').replaceAll("&amp;", "&").replaceAll("&#39;", "'");
    const body = m[3] ?? "";
    // Ginkgo adds synthetic [BeforeSuite]/[AfterSuite] cases: count them like any spec.
    total++;
    if (/<failure|<error/.test(body)) failed.push(name);
    else if (/<skipped/.test(body)) skipped.push(name);
  }
  return { total, failed, skipped, passed: total - failed.length - skipped.length };
}

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
  console.log(
    `csi-sanity [${opts.tier}]: ${result.total} specs, ${result.passed} passed, ${result.failed.length} failed, ${result.skipped.length} skipped`,
  );
  for (const s of skips) console.log(`  skip list: /${s.regex}/ (${s.reason})`);
  if (result.failed.length > 0) {
    console.log(`csi-sanity output (tail):\n${text.slice(-6000)}`);
  }
  // Every skipped spec must be explained by the skip list.
  const unexplained = result.skipped.filter((name) =>
    !skips.some((s) => new RegExp(s.regex.replace(/^\^/, "")).test(name))
  );
  assert.deepEqual(result.failed, [], "csi-sanity specs failed");
  assert.deepEqual(unexplained, [], "specs skipped without a reason in skips.txt");
  return result;
}

Deno.test("csi-sanity: every Identity and Controller spec passes against s3csi controller and MinIO", async () => {
  const minio = await startMinio();
  const dir = await tempDir("s3csi-sanity-");
  const socket = `${dir}/controller.sock`;
  const driver = await spawnDriver({
    socket,
    args: ["controller", "--endpoint", socket, "--s3-endpoint-url", minio.endpoint],
    env: {
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      AWS_REGION: minio.region,
    },
  });
  try {
    const r = await runSanity({
      tier: "controller-only",
      endpoint: `unix://${socket}`,
      dir,
      secrets: minio,
    });
    assert.ok(r.passed >= 15, `expected the Identity and Controller specs to run, got ${r.passed}`);
    assert.ok(!driver.output().includes(minio.secretAccessKey), "a secret reached the log");
  } finally {
    await driver.stop();
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
