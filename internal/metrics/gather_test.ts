import assert from "node:assert/strict";
import { fuseWrittenBytes, volumeScrapeErrors } from "./families.ts";
import { gather, readVolumeSocket, serveVolumeSocket } from "./gather.ts";
import { MetricsServer, parseMetricsAddress } from "./server.ts";

async function counter(c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await c.get()).values.reduce((s, v) => s + v.value, 0);
}

Deno.test("a mount's socket serves its registry as JSON, read back by the node", async () => {
  const dir = await Deno.makeTempDir();
  const sock = `${dir}/metrics.sock`;
  const served = serveVolumeSocket(sock);
  try {
    fuseWrittenBytes.inc(4096);
    const metrics = await readVolumeSocket(sock);
    const written = metrics.find((m) => m.name === "s3csi_fuse_written_bytes_total");
    assert.ok(written, "the family is in the JSON");
    assert.ok((written.values[0]?.value ?? 0) >= 4096);
  } finally {
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(await Deno.stat(sock).then(() => true, () => false), false, "socket removed");
});

Deno.test("gather() labels each mount's samples with its volume_id beside the node's own", async () => {
  const dir = await Deno.makeTempDir();
  const served = serveVolumeSocket(`${dir}/m.sock`);
  try {
    fuseWrittenBytes.inc(1);
    const text = await gather([{ volumeId: "csi-s3-abc", socketPath: `${dir}/m.sock` }]);
    const own = text.split("\n").find((l) => l.startsWith("s3csi_fuse_written_bytes_total "));
    const vol = text.split("\n").find((l) =>
      l.startsWith('s3csi_fuse_written_bytes_total{volume_id="csi-s3-abc"}')
    );
    assert.ok(own, `the node's own sample, without a volume_id:\n${text.slice(0, 400)}`);
    assert.ok(vol, "the mount's sample, with its volume_id");
    // One HELP and TYPE per family, however many sources have it.
    assert.equal(text.match(/^# TYPE s3csi_fuse_written_bytes_total /gm)?.length, 1);
  } finally {
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gather() leaves out a mount that does not answer and counts it, without failing", async () => {
  const before = await counter(volumeScrapeErrors);
  const text = await gather([{ volumeId: "gone", socketPath: "/nonexistent-dir/metrics.sock" }]);
  assert.match(text, /^s3csi_csi_requests_total|# HELP s3csi_csi_requests_total/m);
  assert.doesNotMatch(text, /volume_id="gone"/);
  assert.equal(await counter(volumeScrapeErrors), before + 1);
});

Deno.test("a socket path longer than a unix address holds is served and read", async () => {
  let dir = await Deno.makeTempDir();
  const root = dir;
  while (dir.length < 120) {
    dir = `${dir}/${"d".repeat(30)}`;
    await Deno.mkdir(dir);
  }
  const sock = `${dir}/metrics.sock`;
  assert.ok(sock.length > 107);
  const served = serveVolumeSocket(sock);
  try {
    assert.ok((await readVolumeSocket(sock)).length > 0);
  } finally {
    await served.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parseMetricsAddress() takes host:port and [v6]:port, and names a bad value", () => {
  assert.deepEqual(parseMetricsAddress("127.0.0.1:9810"), { hostname: "127.0.0.1", port: 9810 });
  assert.deepEqual(parseMetricsAddress("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
  assert.deepEqual(parseMetricsAddress("[::1]:9810"), { hostname: "::1", port: 9810 });
  for (const bad of ["9810", "127.0.0.1", "host:99999", "a b:1", ":9810"]) {
    assert.throws(() => parseMetricsAddress(bad), new RegExp(`"${bad}" is not host:port`));
  }
});

Deno.test("MetricsServer answers GET /metrics in the text format and 404 elsewhere", async () => {
  const server = new MetricsServer({ hostname: "127.0.0.1", port: 0 });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^# TYPE s3csi_csi_request_duration_seconds histogram$/m);
    assert.match(body, /^s3csi_process_resident_memory_bytes \d+/m);
    const other = await fetch(`${base}/`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
  } finally {
    await server.stop();
  }
});
