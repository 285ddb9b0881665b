/**
 * Live takeover with the pod mounter: a real Mountpoint Pod process
 * (tests/podmount/harness.ts, unprivileged when run as root) serves a source
 * mount from a real MinIO; the node side is a real `PodMounter` that keeps
 * the connection's keeper. The pod's container crashes and restarts (same
 * pod, same comm directory, the journal it left), or the pod is deleted
 * (SIGTERM: a planned hand-over, its journal copied out by the node) and a
 * new pod takes its place. The workload is two other processes: one reads
 * with one open handle (stream_reader.ts), one lists in a loop; every access
 * to the mount is in a child process, so that the node's recovery, in this
 * process, never waits behind a call on the mount it recovers.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { JOURNAL_FILE } from "../../internal/podmount/contract.ts";
import type { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { canMount, MIB } from "../mount/harness.ts";
import { withMinio, withWorld } from "../podmount/harness.ts";
import { fuseMountsUnder, withTimeout } from "../support/mod.ts";
import { listLoop, randomBytes } from "./load.ts";

const BIG = 256 * MIB;
const CUT_AT = 64 * MIB;

/** A bucket with a large random object and a small directory to list. */
async function fill(s3: AwsObjectClient, bucket: string): Promise<string> {
  await s3.createBucket(bucket);
  const big = randomBytes(BIG);
  await s3.putObject(bucket, "big.bin", big);
  for (let i = 0; i < 20; i++) await s3.putObject(bucket, `d/f${i}`, new Uint8Array([i]));
  return createHash("sha256").update(big).digest("hex");
}

const READER = new URL("./stream_reader.ts", import.meta.url).pathname;
const dec = new TextDecoder();

/**
 * Streams `path` in a child process (stream_reader.ts); calls `onAt` with
 * each progress offset; resolves with its result.
 */
async function readInChild(
  path: string,
  onAt: (offset: number) => void,
): Promise<{ sha256: string; errors: string[] }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", READER, path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let last = "";
  let buf = "";
  for await (const chunk of child.stdout) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("at ")) onAt(Number(line.slice(3)));
      else last = line;
    }
  }
  assert.equal((await child.status).code, 0, "the reader ran to the end");
  return JSON.parse(last);
}

/** Runs `sh -c script` (a child process: see the module note); returns its stdout. */
async function sh(script: string): Promise<string> {
  const r = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  assert.equal(r.code, 0, `sh -c ${script}`);
  return dec.decode(r.stdout);
}

/** Resolves once a listing of `dir` (in a child) is answered: the successor serves. */
async function firstServed(dir: string): Promise<void> {
  await sh(`ls ${dir} > /dev/null`);
}

Deno.test({
  name:
    "a Mountpoint Pod's container SIGKILLed under a reader and a lister restarts and takes the live mount over: no ENOTCONN, the right bytes, new files after",
  ignore: !canMount,
  async fn() {
    await withMinio(async (minio, s3) => {
      const expected = await fill(s3, "crash");
      await withWorld(minio, async (w) => {
        const pod = await w.startPod();
        const spec = w.spec({ bucket: "crash" });
        await w.mounter.ensureMounted(spec);
        const lister = listLoop(`${spec.sourceDir}/d`);
        const cut: { served?: Promise<number>; restarted?: ReturnType<typeof w.restartPod> } = {};
        const read = await readInChild(`${spec.sourceDir}/big.bin`, (offset) => {
          if (cut.served || offset < CUT_AT) return;
          pod.kill("SIGKILL");
          cut.served = (async () => {
            await withTimeout(pod.status, 10_000, "the killed container exits");
            const t0 = performance.now();
            // The kubelet restarts the container: same pod, same comm directory, its journal.
            cut.restarted = w.restartPod(pod);
            await firstServed(`${spec.sourceDir}/d`);
            return performance.now() - t0;
          })();
        });
        assert.ok(cut.served, "the container was killed during the read");
        const servedMs = await cut.served;
        const listed = await lister.stop();
        console.log(
          `container restart: first request served ${
            servedMs.toFixed(0)
          } ms after the new container started; reader errors ${
            JSON.stringify(read.errors)
          }; ${listed.lists} listings, errors ${JSON.stringify(listed.errors)}`,
        );
        assert.equal(read.sha256, expected, "the right bytes to the end");
        for (const errors of [read.errors, listed.errors]) {
          assert.ok(!errors.includes("ENOTCONN"), `no ENOTCONN: ${errors}`);
          assert.ok(errors.length <= 1, `at most the call in flight fails: ${errors}`);
        }
        const after = `${spec.sourceDir}/after.txt`;
        assert.equal(await sh(`printf after > ${after} && cat ${after}`), "after");
        assert.equal((await fuseMountsUnder(w.kubelet)).length, 1, "the same mount, no second");
        await w.mounter.ensureMounted(spec); // a healthy source: credentials only
        await w.mounter.unmount(spec.sourceDir, spec.stateDir);
        assert.equal(await withTimeout(cut.restarted!.status, 30_000, "restarted pod exit"), 0);
        assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
      });
      assert.equal(
        new TextDecoder().decode((await s3.getObject("crash", "after.txt")).body),
        "after",
      );
    });
  },
});

Deno.test({
  name:
    "a Mountpoint Pod deleted (SIGTERM) hands its mount over: the node keeps its journal, a new pod continues it, and no call fails",
  ignore: !canMount,
  async fn() {
    await withMinio(async (minio, s3) => {
      const expected = await fill(s3, "handover");
      await withWorld(minio, async (w) => {
        const old = await w.startPod();
        const spec = w.spec({ bucket: "handover" });
        await w.mounter.ensureMounted(spec);
        const lister = listLoop(`${spec.sourceDir}/d`);
        const cut: { served?: Promise<number>; next?: Awaited<ReturnType<typeof w.startPod>> } = {};
        const read = await readInChild(`${spec.sourceDir}/big.bin`, (offset) => {
          if (cut.served || offset < CUT_AT) return;
          old.kill("SIGTERM");
          cut.served = (async () => {
            assert.equal(await withTimeout(old.status, 30_000, "the old pod exits"), 0);
            const saved = await Deno.stat(`${spec.stateDir}/${JOURNAL_FILE}`);
            assert.equal(saved.mode! & 0o777, 0o600, "the node's copy of the journal is private");
            const t0 = performance.now();
            // The reconciler's new Mountpoint Pod: a new UID, an empty comm directory.
            cut.next = await w.startPod();
            await firstServed(`${spec.sourceDir}/d`);
            return performance.now() - t0;
          })();
        });
        assert.ok(cut.served, "the pod was deleted during the read");
        const servedMs = await cut.served;
        const listed = await lister.stop();
        console.log(
          `hand-over to a new pod: first request served ${
            servedMs.toFixed(0)
          } ms after it started; reader errors ${
            JSON.stringify(read.errors)
          }; ${listed.lists} listings, errors ${JSON.stringify(listed.errors)}`,
        );
        assert.match(old.output(), /hand/i, "the old pod says it handed over");
        assert.equal(read.sha256, expected);
        assert.deepEqual(read.errors, [], "a planned hand-over fails no call");
        assert.deepEqual(listed.errors, []);
        const after = `${spec.sourceDir}/after.txt`;
        assert.equal(await sh(`printf after > ${after} && cat ${after}`), "after");
        assert.equal((await fuseMountsUnder(w.kubelet)).length, 1);
        await w.mounter.unmount(spec.sourceDir, spec.stateDir);
        assert.equal(await withTimeout(cut.next!.status, 30_000, "new pod exit"), 0);
        assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
      });
    });
  },
});

Deno.test({
  name:
    "a node plugin that restarted takes its keeper back from the Mountpoint Pod: the pod's crash after that is survived as before",
  ignore: !canMount,
  async fn() {
    await withMinio(async (minio, s3) => {
      const expected = await fill(s3, "both");
      await withWorld(minio, async (w) => {
        const pod = await w.startPod();
        const spec = w.spec({ bucket: "both" });
        await w.mounter.ensureMounted(spec);
        // The node plugin exits (its keeper closes) and a new instance starts.
        w.mounter.release();
        const node = w.restartNode();
        await node.recover(spec.stateDir.slice(0, spec.stateDir.lastIndexOf("/")));
        assert.equal(await sh(`cat ${spec.sourceDir}/d/f1 | od -An -tu1`), "   1\n");
        const lister = listLoop(`${spec.sourceDir}/d`);
        const cut: { served?: Promise<void>; restarted?: ReturnType<typeof w.restartPod> } = {};
        const read = await readInChild(`${spec.sourceDir}/big.bin`, (offset) => {
          if (cut.served || offset < CUT_AT) return;
          pod.kill("SIGKILL");
          cut.served = (async () => {
            await withTimeout(pod.status, 10_000, "the killed container exits");
            cut.restarted = w.restartPod(pod);
            await firstServed(`${spec.sourceDir}/d`);
          })();
        });
        assert.ok(cut.served, "the container was killed during the read");
        await cut.served;
        const listed = await lister.stop();
        console.log(
          `node restart, then container restart: reader errors ${
            JSON.stringify(read.errors)
          }; ${listed.lists} listings, errors ${JSON.stringify(listed.errors)}`,
        );
        assert.equal(read.sha256, expected);
        for (const errors of [read.errors, listed.errors]) {
          assert.ok(!errors.includes("ENOTCONN"), `no ENOTCONN: ${errors}`);
          assert.ok(errors.length <= 1, `at most the call in flight fails: ${errors}`);
        }
        assert.equal((await fuseMountsUnder(w.kubelet)).length, 1);
        await node.unmount(spec.sourceDir, spec.stateDir);
        assert.equal(await withTimeout(cut.restarted!.status, 30_000, "restarted pod exit"), 0);
        assert.deepEqual(await fuseMountsUnder(w.kubelet), []);
      });
    });
  },
});
