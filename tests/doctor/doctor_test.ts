/**
 * `s3csi doctor` against real parts: a throwaway MinIO (plain and TLS), a
 * closed port, a proxy that skews the endpoint's clock, the real /dev/fuse
 * and a real private mount. Each failing case shows the verdict for its own
 * reason; the command itself runs as a subprocess (`main.ts doctor --json`)
 * for its exit codes and to show no secret reaches its output.
 *
 * Runs as root (the FUSE and mount cases need it). CA variables of the
 * environment are removed from the subprocesses: trust comes from
 * `--ca-bundle` only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Result, runChecks } from "../../internal/doctor/check.ts";
import { localChecks } from "../../internal/doctor/local_checks.ts";
import { s3Checks } from "../../internal/doctor/s3_checks.ts";
import type { S3Connection } from "../../internal/cli/role_flags.ts";
import { type MinioServer, startMinio } from "../support/minio.ts";
import { freePort, tempDir } from "../support/helpers.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { minioClientConfig } from "../support/minio.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const IS_ROOT = Deno.uid() === 0;

/** The environment of a doctor subprocess: nothing CA-, AWS- or kube-related but what is given. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) {
    if (/CA_BUNDLE|CA_CERTS|SSL_CERT|CAINFO|^AWS_|^KUBE|^NODE_NAME$|CERT_FILE|CERTS_FILE/.test(k)) {
      delete env[k];
    }
  }
  return { ...env, ...extra };
}

async function doctor(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "doctor", ...args],
    env: cleanEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const creds = (m: MinioServer, secret = m.secretAccessKey) => ({
  AWS_ACCESS_KEY_ID: m.accessKeyId,
  AWS_SECRET_ACCESS_KEY: secret,
});

function conn(endpointUrl: string, more: Partial<S3Connection> = {}): S3Connection {
  return { region: "us-east-1", endpointUrl, forcePathStyle: true, ...more };
}

async function s3(m: MinioServer, c: S3Connection, bucket?: string): Promise<Map<string, Result>> {
  const results = await runChecks(s3Checks({
    conn: c,
    credentials: { accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey },
    ...(bucket ? { bucket } : {}),
  }));
  return new Map(results.map((r) => [r.id, r]));
}

Deno.test("s3csi doctor --json: every S3 check ok against MinIO, exit 0, no secret printed", async () => {
  const m = await startMinio();
  try {
    const r = await doctor(
      ["--json", "--skip", "local,cluster", "--endpoint-url", m.endpoint],
      creds(m),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.checks.map((c: Result) => [c.id, c.verdict]),
      ["s3.dns", "s3.tcp", "s3.tls", "s3.clock", "s3.auth", "s3.region"].map((id) => [id, "ok"]),
    );
    assert.deepEqual(report.summary, { ok: 6, warning: 0, failed: 0, skipped: 0 });
    assert.ok(!r.stdout.includes(m.secretAccessKey) && !r.stderr.includes(m.secretAccessKey));
  } finally {
    await m.stop();
  }
});

Deno.test("s3csi doctor: a wrong secret key fails s3.auth with SignatureDoesNotMatch, exit 1, secret not printed", async () => {
  const m = await startMinio();
  try {
    const wrong = "wrongSecretKey0123456789";
    const r = await doctor(
      ["--skip", "local,cluster", "--endpoint-url", m.endpoint],
      creds(m, wrong),
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^s3\.auth +FAILED +The secret key does not match .*SignatureDoesNotMatch/m,
    );
    assert.match(r.stdout, /^s3\.region +WARNING +Skipped: s3\.auth failed$/m);
    assert.ok(!r.stdout.includes(wrong) && !r.stderr.includes(wrong));
  } finally {
    await m.stop();
  }
});

Deno.test("s3.auth fails with InvalidAccessKeyId for a key S3 does not know", async () => {
  const m = await startMinio();
  try {
    const results = await runChecks(s3Checks({
      conn: conn(m.endpoint),
      credentials: { accessKeyId: "nobodyKnowsMe", secretAccessKey: m.secretAccessKey },
    }));
    const auth = results.find((r) => r.id === "s3.auth")!;
    assert.equal(auth.verdict, "failed");
    assert.match(auth.reason, /does not know the access key.*InvalidAccessKeyId/);
  } finally {
    await m.stop();
  }
});

Deno.test("s3.tcp fails with connection refused on a closed port, and the checks above it are skipped", async () => {
  const port = freePort();
  const results = await runChecks(s3Checks({ conn: conn(`http://127.0.0.1:${port}`) }));
  const byId = new Map(results.map((r) => [r.id, r]));
  assert.equal(byId.get("s3.dns")!.verdict, "ok");
  assert.equal(byId.get("s3.tcp")!.verdict, "failed");
  assert.match(
    byId.get("s3.tcp")!.reason,
    new RegExp(`Connection refused by 127\\.0\\.0\\.1:${port}`),
  );
  for (const id of ["s3.tls", "s3.clock", "s3.auth", "s3.region"]) {
    assert.equal(byId.get(id)!.skipped, true, id);
  }
});

Deno.test("s3.dns fails for a name that does not resolve", async () => {
  const results = await runChecks(s3Checks({ conn: conn("http://no-such-host.invalid:9000") }));
  assert.equal(results[0]!.verdict, "failed");
  assert.match(results[0]!.reason, /no-such-host\.invalid does not resolve/);
});

Deno.test("s3.tls is ok with MinIO's CA, names the certificate, and fails as unknown CA without it", async () => {
  const m = await startMinio({ tls: true });
  try {
    const trusted = await s3(m, conn(m.endpoint, { caBundlePath: m.caCertPath! }));
    const tls = trusted.get("s3.tls")!;
    assert.equal(tls.verdict, "warning", tls.reason); // the test certificate lives 2 days
    assert.match(tls.reason, /Certificate for 127\.0\.0\.1, localhost expires in [01] days/);
    assert.equal(trusted.get("s3.auth")!.verdict, "ok", trusted.get("s3.auth")!.reason);
    assert.equal(trusted.get("s3.clock")!.verdict, "ok");

    const untrusted = await s3(m, conn(m.endpoint));
    const refused = untrusted.get("s3.tls")!;
    assert.equal(refused.verdict, "failed");
    assert.match(refused.reason, /signed by an unknown CA \(issuer "s3csi test CA"\)/);
    assert.match(refused.action!, /--ca-bundle/);
    assert.equal(untrusted.get("s3.auth")!.skipped, true);
  } finally {
    await m.stop();
  }
});

/**
 * A TCP proxy to `upstream` that moves the `Date` header of the first
 * response on each connection by `shiftMs`: the endpoint's clock, skewed.
 */
function skewingProxy(upstream: URL, shiftMs: number): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serve = async (client: Deno.Conn) => {
    const server = await Deno.connect({ hostname: upstream.hostname, port: Number(upstream.port) });
    conns.add(client).add(server);
    client.readable.pipeTo(server.writable).catch(() => {});
    const reader = server.readable.getReader();
    const writer = client.writable.getWriter();
    // The first response's head, until it is complete; null once rewritten.
    let head: Uint8Array | null = new Uint8Array(0);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (head === null) {
          await writer.write(value);
          continue;
        }
        const joined: Uint8Array = new Uint8Array(head.length + value.length);
        joined.set(head);
        joined.set(value, head.length);
        const text = new TextDecoder("latin1").decode(joined);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) {
          head = joined;
          continue;
        }
        const rewritten = text.slice(0, end).replace(/^date: (.*)$/im, (_, d: string) => {
          return `Date: ${new Date(Date.parse(d) + shiftMs).toUTCString()}`;
        }) + text.slice(end);
        await writer.write(Uint8Array.from(rewritten, (c) => c.charCodeAt(0)));
        head = null;
      }
    } catch {
      // A side closed.
    } finally {
      for (const c of [client, server]) {
        conns.delete(c);
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    }
  };
  (async () => {
    for await (const c of listener) serve(c);
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

Deno.test("s3.clock fails when the endpoint's Date is 20 minutes ahead (through a skewing proxy)", async () => {
  const m = await startMinio();
  const proxy = skewingProxy(new URL(m.endpoint), 20 * 60_000);
  try {
    const r = await s3(m, conn(proxy.url));
    const clock = r.get("s3.clock")!;
    assert.equal(clock.verdict, "failed", clock.reason);
    assert.match(
      clock.reason,
      /Clock is 20 min \(endpoint ahead\) off the endpoint's: SigV4 fails past 15 min/,
    );
    assert.match(clock.action!, /NTP/);
    // Only the Date header was moved: the signature itself still passes.
    assert.equal(r.get("s3.auth")!.verdict, "ok", r.get("s3.auth")!.reason);
  } finally {
    proxy.close();
    await m.stop();
  }
});

Deno.test("s3.region fails when --bucket lives in another region than the driver signs for", async () => {
  const m = await startMinio();
  const client = new AwsObjectClient(minioClientConfig(m));
  try {
    await client.createBucket("doctor-region");
    const ok = await s3(m, conn(m.endpoint), "doctor-region");
    assert.equal(ok.get("s3.region")!.verdict, "ok", ok.get("s3.region")!.reason);
    const off = await s3(m, conn(m.endpoint, { region: "eu-west-1" }), "doctor-region");
    const region = off.get("s3.region")!;
    assert.equal(region.verdict, "failed", region.reason);
    assert.match(
      region.reason,
      /Bucket "doctor-region" is in "us-east-1", the driver signs for "eu-west-1"/,
    );
    const missing = await s3(m, conn(m.endpoint), "no-such-bucket");
    assert.match(missing.get("s3.auth")!.reason, /Bucket "no-such-bucket" does not exist/);
  } finally {
    client.close();
    await m.stop();
  }
});

Deno.test({
  name: "local.fuse-mount mounts through the real /dev/fuse and reports the FUSE protocol version",
  ignore: !IS_ROOT,
  fn: async () => {
    const results = await runChecks(localChecks({ kubeletDir: "/" }));
    const fuse = results.find((r) => r.id === "local.fuse-mount")!;
    assert.equal(fuse.verdict, "ok", fuse.reason);
    assert.match(fuse.reason, /^FUSE 7\.\d+/);
    assert.match(String(fuse.detail?.protocol), /^7\.\d+$/);
    const left = (await Deno.readTextFile("/proc/self/mountinfo")).includes("s3csi-doctor");
    assert.equal(left, false, "the probe mount is gone");
  },
});

async function sh(...args: string[]): Promise<void> {
  const out = await new Deno.Command(args[0]!, { args: args.slice(1), stderr: "piped" }).output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test({
  name: "local.propagation fails on a private kubelet dir mount and is ok once it is shared",
  ignore: !IS_ROOT,
  fn: async () => {
    const kubelet = await tempDir("s3csi-doctor-kubelet-");
    await sh("mount", "--bind", kubelet, kubelet);
    try {
      await sh("mount", "--make-private", kubelet);
      const verdict = async () =>
        (await runChecks(localChecks({ kubeletDir: kubelet })))
          .find((r) => r.id === "local.propagation")!;
      const priv = await verdict();
      assert.equal(priv.verdict, "failed");
      assert.match(priv.reason, /is a private mount: mounts made here do not reach the kubelet/);
      assert.match(priv.action!, new RegExp(`mount --make-rshared ${kubelet}`));
      await sh("mount", "--make-shared", kubelet);
      const shared = await verdict();
      assert.equal(shared.verdict, "ok", shared.reason);
      assert.match(shared.reason, /is a shared mount \(shared:\d+\)/);
    } finally {
      await sh("umount", kubelet);
      await Deno.remove(kubelet, { recursive: true });
    }
  },
});
