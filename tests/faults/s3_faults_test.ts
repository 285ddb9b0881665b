/**
 * The fault tier, S3 side: `s3csi mount` talks to MinIO through Toxiproxy
 * (tests/support/toxiproxy.ts), which slows, cuts and stops the traffic on
 * purpose. What each fault may cost is the README's "Reliability" table,
 * and these tests assert it:
 * - a read returns the right bytes (after retries) or fails with EIO,
 *   never wrong bytes;
 * - a write either completes a correct object at close or fails close
 *   with an error and leaves no object, and no multipart upload is left
 *   behind (ListMultipartUploads).
 *
 * Every access to the mount is a child process (`sh`), so that a fault
 * that holds a call never holds the test's own event loop.
 */
import assert from "node:assert/strict";
import { canMount, type Env, MIB, withEnv } from "../mount/harness.ts";
import { listUploads } from "../support/mod.ts";
import { type Proxy, startToxiproxy } from "../support/toxiproxy.ts";
import { type SlowdownProxy, startSlowdownProxy } from "../support/slowdown_proxy.ts";
import { randomBytes } from "../takeover/load.ts";

const dec = new TextDecoder();

/** Runs `fn` with a mount of a fresh bucket through a Toxiproxy proxy in front of MinIO. */
async function withFaultyMount(
  fn: (env: Env, proxy: Proxy, dir: string) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const toxiproxy = await startToxiproxy();
  try {
    await withEnv(async (env) => {
      const upstream = new URL(env.minio.endpoint).host;
      const proxy = await toxiproxy.proxy(`s3-${crypto.randomUUID().slice(0, 8)}`, upstream);
      const m = await env.mount(args, { endpoint: proxy.endpoint });
      try {
        await fn(env, proxy, m.dir);
      } finally {
        await proxy.clear();
        await proxy.setEnabled(true);
      }
    });
  } finally {
    await toxiproxy.stop();
  }
}

/** Runs `fn` with a fresh MinIO and bucket behind an HTTP fault proxy (slowdown_proxy.ts). */
async function withSlowdownProxy(fn: (env: Env, proxy: SlowdownProxy) => Promise<void>) {
  await withEnv(async (env) => {
    const url = new URL(env.minio.endpoint);
    const proxy = startSlowdownProxy({ hostname: url.hostname, port: Number(url.port) });
    try {
      await fn(env, proxy);
    } finally {
      await proxy.stop();
    }
  });
}

/** `sh -c script` in a child; its exit code, stdout and stderr. */
async function sh(script: string): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .output();
  return { code: r.code, out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim() };
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new Uint8Array(data));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads `path` (in a child) and says how: the right bytes, EIO, or something wrong. */
async function readOutcome(
  path: string,
  expected: string,
  started?: () => void,
): Promise<"right" | "EIO"> {
  await sh("sync; echo 3 > /proc/sys/vm/drop_caches");
  const reading = sh(`sha256sum "${path}"`);
  started?.();
  const r = await reading;
  if (r.code === 0) {
    assert.equal(r.out.split(" ")[0], expected, "never wrong bytes");
    return "right";
  }
  assert.match(r.err, /Input\/output error/, `a failed read is EIO: ${r.err}`);
  return "EIO";
}

/** Writes `size` random bytes to `path` (in a child, through `dd`); says how it ended. */
async function writeOutcome(
  env: Env,
  dir: string,
  key: string,
  size: number,
  started?: () => void,
): Promise<"complete" | "failed"> {
  const src = `${env.work}/${key}.src`;
  const data = randomBytes(size);
  await Deno.writeFile(src, data);
  const writing = sh(`dd if="${src}" of="${dir}/${key}" bs=1M conv=fsync 2>&1`);
  started?.();
  const r = await writing;
  const head = await env.s3.headObject(env.bucket, key).catch(() => null);
  if (r.code === 0) {
    assert.ok(head, "a write whose close succeeded is in the bucket");
    const got = (await env.s3.getObject(env.bucket, key)).body;
    assert.equal(await sha256(got), await sha256(data), "the object is the bytes written");
    return "complete";
  }
  assert.match(
    r.out,
    /Input\/output error|No space|Connection/,
    `a failed write names why: ${r.out}`,
  );
  assert.equal(head, null, "a failed write leaves no object");
  return "failed";
}

/** No multipart upload is left in the bucket (the abort may trail the close by a moment). */
async function noUploadsLeft(env: Env): Promise<void> {
  const deadline = Date.now() + 10_000;
  let left = await listUploads(env.minio, env.bucket);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    left = await listUploads(env.minio, env.bucket);
  }
  assert.deepEqual(left, [], "no orphaned multipart upload");
}

Deno.test({
  name:
    "faults: latency spikes on every S3 answer slow reads, listings and writes down, and cost nothing else",
  ignore: !canMount,
  async fn() {
    await withFaultyMount(async (env, proxy, dir) => {
      const data = randomBytes(24 * MIB);
      await env.s3.putObject(env.bucket, "big.bin", data);
      for (let i = 0; i < 5; i++) {
        await env.s3.putObject(env.bucket, `d/f${i}`, new Uint8Array([i]));
      }
      await proxy.add({ type: "latency", attributes: { latency: 300, jitter: 200 } });
      assert.equal(await readOutcome(`${dir}/big.bin`, await sha256(data)), "right");
      assert.equal((await sh(`ls "${dir}/d" | wc -l`)).out, "5");
      assert.equal(await writeOutcome(env, dir, "slow.bin", 20 * MIB), "complete");
      await noUploadsLeft(env);
    });
  },
});

Deno.test({
  name:
    "faults: connections cut in the middle of GET bodies give the right bytes after retries, or EIO",
  ignore: !canMount,
  async fn() {
    await withFaultyMount(async (env, proxy, dir) => {
      const data = randomBytes(48 * MIB);
      await env.s3.putObject(env.bucket, "big.bin", data);
      const expected = await sha256(data);
      // Half the connections close after 2 MiB toward the client: inside a ranged GET's body.
      await proxy.add({ type: "limit_data", toxicity: 0.5, attributes: { bytes: 2 * MIB } });
      const outcomes = [];
      for (let i = 0; i < 3; i++) outcomes.push(await readOutcome(`${dir}/big.bin`, expected));
      console.log(`reads with cut GET bodies: ${outcomes.join(", ")}`);
      // Every connection cut: the reads fail, with EIO, never with wrong bytes.
      await proxy.clear();
      await proxy.add({ type: "limit_data", attributes: { bytes: 256 * 1024 } });
      assert.equal(await readOutcome(`${dir}/big.bin`, expected), "EIO");
      await proxy.clear();
      assert.equal(await readOutcome(`${dir}/big.bin`, expected), "right", "and it recovers");
    }, ["--aws-max-attempts", "3"]);
  },
});

Deno.test({
  name:
    "faults: connections cut in the middle of UploadPart bodies: the object is complete and correct at close, or close fails and nothing is left",
  ignore: !canMount,
  async fn() {
    await withFaultyMount(async (env, proxy, dir) => {
      await proxy.add({
        type: "limit_data",
        stream: "upstream",
        toxicity: 0.3,
        attributes: { bytes: 3 * MIB },
      });
      const outcomes = [];
      for (let i = 0; i < 3; i++) {
        outcomes.push(await writeOutcome(env, dir, `w${i}.bin`, 40 * MIB));
      }
      console.log(`writes with cut UploadPart bodies: ${outcomes.join(", ")}`);
      // Every UploadPart cut: close fails, and the upload is aborted.
      await proxy.clear();
      await proxy.add({ type: "limit_data", stream: "upstream", attributes: { bytes: 1 * MIB } });
      assert.equal(await writeOutcome(env, dir, "cut.bin", 24 * MIB), "failed");
      await proxy.clear();
      await noUploadsLeft(env);
      assert.equal(await writeOutcome(env, dir, "after.bin", 24 * MIB), "complete");
    }, ["--aws-max-attempts", "3"]);
  },
});

Deno.test({
  name:
    "faults: the endpoint down for 10 s then back: calls meanwhile succeed late or fail with EIO; afterwards all works",
  ignore: !canMount,
  async fn() {
    await withFaultyMount(async (env, proxy, dir) => {
      const data = randomBytes(8 * MIB);
      await env.s3.putObject(env.bucket, "a.bin", data);
      const expected = await sha256(data);
      await proxy.setEnabled(false);
      const read = readOutcome(`${dir}/a.bin`, expected);
      const listed = sh(`ls "${dir}"`);
      await new Promise((r) => setTimeout(r, 10_000));
      await proxy.setEnabled(true);
      const [r, l] = await Promise.all([read, listed]);
      console.log(`during the outage: read ${r}, listing exit ${l.code} ${l.err}`);
      if (l.code !== 0) assert.match(l.err, /Input\/output error/);
      assert.equal(await readOutcome(`${dir}/a.bin`, expected), "right");
      assert.equal(await writeOutcome(env, dir, "after.bin", 4 * MIB), "complete");
      await noUploadsLeft(env);
    });
  },
});

Deno.test({
  name:
    "faults: 503 SlowDown bursts: a short one is retried away, a long one fails reads with EIO and writes at close, leaving nothing",
  ignore: !canMount,
  async fn() {
    await withSlowdownProxy(async (env, proxy) => {
      const data = randomBytes(16 * MIB);
      await env.s3.putObject(env.bucket, "a.bin", data);
      const expected = await sha256(data);
      const m = await env.mount(["--aws-max-attempts", "4"], { endpoint: proxy.endpoint });
      proxy.burst(2);
      assert.equal(await readOutcome(`${m.dir}/a.bin`, expected), "right");
      proxy.burst(2);
      assert.equal(await writeOutcome(env, m.dir, "w.bin", 20 * MIB), "complete");
      proxy.burst(10_000);
      assert.equal(await readOutcome(`${m.dir}/a.bin`, expected), "EIO");
      const long = writeOutcome(env, m.dir, "long.bin", 20 * MIB);
      const failed = await long;
      proxy.burst(0);
      console.log(
        `503 bursts: ${proxy.refused()} requests refused; the long burst's write ${failed}`,
      );
      assert.equal(failed, "failed");
      await noUploadsLeft(env);
      assert.equal(await readOutcome(`${m.dir}/a.bin`, expected), "right", "and it recovers");
    });
  },
});

Deno.test({
  name:
    "faults: MinIO SIGKILLed and restarted during a large read and during a large write: right bytes or EIO; a complete object or a failed close and nothing left",
  ignore: !canMount,
  async fn() {
    await withEnv(async (env) => {
      const data = randomBytes(256 * MIB);
      await env.s3.putObject(env.bucket, "big.bin", data);
      const expected = await sha256(data);
      const m = await env.mount([]);
      // 200 ms into the transfer (which takes about a second here), down for 2 s.
      let down: Promise<void> = Promise.resolve();
      const outage = () => {
        down = (async () => {
          await new Promise((r) => setTimeout(r, 200));
          await env.minio.kill();
          await new Promise((r) => setTimeout(r, 2_000));
          await env.minio.restart();
        })();
      };
      const read = await readOutcome(`${m.dir}/big.bin`, expected, outage);
      await down;
      const write = await writeOutcome(env, m.dir, "w.bin", 256 * MIB, outage);
      await down;
      console.log(`MinIO killed and restarted: the read ${read}, the write ${write}`);
      await noUploadsLeft(env);
      assert.equal(await readOutcome(`${m.dir}/big.bin`, expected), "right", "all works after");
      assert.equal(await writeOutcome(env, m.dir, "after.bin", 16 * MIB), "complete");
    });
  },
});

Deno.test({
  name:
    "faults: a GET body that stalls is given up after the idle timeout (--s3-timeout) and fetched again: right bytes, or EIO once every attempt stalled",
  ignore: !canMount,
  async fn() {
    await withSlowdownProxy(async (env, proxy) => {
      const once = randomBytes(12 * MIB);
      const always = randomBytes(12 * MIB);
      await env.s3.putObject(env.bucket, "once.bin", once);
      await env.s3.putObject(env.bucket, "always.bin", always);
      // 3 s rather than the default 60: in the EIO case every READ the
      // kernel sends (readahead, then its own retry) waits out each attempt.
      const m = await env.mount(["--aws-max-attempts", "2", "--s3-timeout", "3"], {
        endpoint: proxy.endpoint,
      });
      // The head and 1 MiB of the body pass, then the connection goes quiet.
      const gets = (key: string) => new RegExp(`^GET /${env.bucket}/${key}[? ]`);
      proxy.stall(gets("once\\.bin"), 1 * MIB, 1);
      proxy.stall(gets("always\\.bin"), 1 * MIB, 1_000);
      const started = Date.now();
      const [a, b] = await Promise.all([
        readOutcome(`${m.dir}/once.bin`, await sha256(once)),
        readOutcome(`${m.dir}/always.bin`, await sha256(always)),
      ]);
      console.log(
        `stalled bodies: ${proxy.stalled()} answers stalled; once: ${a}, always: ${b}, ` +
          `in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
      const warned = m.output().split("\n").filter((l) => l.includes('"level":"warn"'));
      console.log(`the mount's warnings: ${warned.length}; the first: ${warned[0] ?? ""}`);
      assert.equal(a, "right", "one stalled answer is retried away");
      assert.equal(b, "EIO", "a body that always stalls fails the read, it does not hang it");
    });
  },
});
