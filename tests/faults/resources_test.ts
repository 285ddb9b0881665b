/**
 * The fault tier, resources side: the mount short of disk, of memory and of
 * nothing but patience, against a real MinIO and the kernel's FUSE. What
 * each may cost is the README's "Reliability" table:
 * - the cache directory full: reads go on from S3, uncached, with the right
 *   bytes, and the log says so once rather than once a block;
 * - a small `--max-memory` under many readers and writers, in the memory
 *   cgroup a Mountpoint Pod with that `--max-memory` gets: back-pressure,
 *   not an OOM kill;
 * - 1,000 files open at once: every open, read, write and close succeeds;
 * - a directory of 200,000 objects listed while other clients add and
 *   remove names in it: no name twice, and none missing that existed
 *   throughout.
 *
 * Every access to the mount is a child process, so that a call the mount
 * holds never holds the test's own event loop.
 */
import assert from "node:assert/strict";
import { canMount, MIB, run, sha256, withEnv } from "../mount/harness.ts";
import { memoryCgroup, memoryCgroupKind } from "../support/memory_cgroup.ts";
import { randomBytes } from "../takeover/load.ts";
import { fillBucket } from "../support/snowball.ts";
import { maxMemoryMiB } from "../../internal/reconciler/mountpoint_pod.ts";

/** Runs `fn` over `items` with at most `width` at once. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

Deno.test({
  name:
    "resources: the cache directory full: reads go on from S3 with the right bytes, and one warning says so",
  ignore: !canMount,
  async fn() {
    await withEnv(async (env) => {
      const cache = `${env.work}/cache`;
      await Deno.mkdir(cache);
      // A 4 MiB disk under a cache allowed 1 GiB: full after a few blocks.
      await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", cache]);
      try {
        const data = randomBytes(32 * MIB);
        await env.s3.putObject(env.bucket, "big.bin", data);
        const expected = await sha256(data);
        const m = await env.mount(["--cache", cache, "--max-cache-size", "1024"]);
        for (let i = 0; i < 2; i++) {
          await run("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
          const r = await run("sha256sum", [`${m.dir}/big.bin`]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.split(" ")[0], expected, `read ${i + 1}: never wrong bytes`);
        }
        const warnings = m.output().split("\n").filter((l) => l.includes("Cannot write cache"));
        console.log(`cache disk full: ${warnings.length} warning(s): ${warnings[0] ?? ""}`);
        assert.ok(warnings.length >= 1, "the full disk is logged");
        assert.ok(
          warnings.length <= 2,
          `one warning a minute, not one a block: ${warnings.length}`,
        );
        await m.stop();
      } finally {
        await run("umount", ["-l", cache]);
      }
    });
  },
});

/** The memory limit of a Mountpoint Pod the reconciler runs with --max-memory 64. */
const SMALL_LIMIT = 448 * MIB;
const SMALL_MAX_MEMORY_MIB = 64;

Deno.test({
  name:
    "resources: --max-memory 64 with 12 readers and 6 writers at once, in the 448 MiB memory cgroup the reconciler sizes for it: back-pressure, no OOM kill, every byte right",
  ignore: !canMount || memoryCgroupKind() === null,
  async fn() {
    await withEnv(async (env) => {
      const readers = 12, writers = 6, size = 48 * MIB;
      const expected: string[] = [];
      for (let i = 0; i < readers; i++) {
        const data = randomBytes(size);
        expected.push(await sha256(data));
        await env.s3.putObject(env.bucket, `r${i}`, data);
      }
      const written: string[] = [];
      for (let i = 0; i < writers; i++) {
        const data = randomBytes(size);
        written.push(await sha256(data));
        await Deno.writeFile(`${env.work}/src${i}`, data);
      }
      assert.equal(maxMemoryMiB(SMALL_LIMIT), SMALL_MAX_MEMORY_MIB, "the reconciler's sizing");
      const cgroup = await memoryCgroup(SMALL_LIMIT);
      let m: Awaited<ReturnType<typeof env.mount>> | undefined;
      try {
        m = await env.mount(["--max-memory", String(SMALL_MAX_MEMORY_MIB)], {
          cgroupProcs: cgroup.procs,
        });
        await run("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
        const [reads, writes] = await Promise.all([
          Promise.all(expected.map((_, i) => run("sha256sum", [`${m!.dir}/r${i}`]))),
          Promise.all(written.map((_, i) => run("cp", [`${env.work}/src${i}`, `${m!.dir}/w${i}`]))),
        ]);
        const peakMiB = (cgroup.peak() / MIB).toFixed(0);
        console.log(
          `--max-memory ${SMALL_MAX_MEMORY_MIB}, ${readers} readers and ${writers} writers: ` +
            `cgroup peak ${peakMiB} MiB of ${SMALL_LIMIT / MIB}`,
        );
        assert.equal(cgroup.oomKills(), 0, `the mount was OOM-killed (peak ${peakMiB} MiB)`);
        reads.forEach((r, i) => {
          assert.equal(r.code, 0, `sha256sum r${i}: ${r.stderr}`);
          assert.equal(r.stdout.split(" ")[0], expected[i], `r${i}: never wrong bytes`);
        });
        writes.forEach((w, i) => assert.equal(w.code, 0, `cp w${i}: ${w.stderr}`));
        for (let i = 0; i < writers; i++) {
          const got = await env.s3.getObject(env.bucket, `w${i}`);
          assert.equal(await sha256(got.body as Uint8Array<ArrayBuffer>), written[i], `w${i}`);
        }
      } finally {
        await m?.stop();
        await cgroup.remove();
      }
    });
  },
});

Deno.test({
  name:
    "resources: 1,000 files open at once (500 read, 500 written): every open, read, write and close succeeds",
  ignore: !canMount,
  async fn() {
    await withEnv(async (env) => {
      const n = 500;
      const names = Array.from({ length: n }, (_, i) => i);
      await pool(names, 32, (i) => env.s3.putObject(env.bucket, `r/${i}`, enc.encode(`${i}`)));
      const m = await env.mount([]);
      const script = new URL("./open_many.ts", import.meta.url).pathname;
      const fdsBefore = [...Deno.readDirSync(`/proc/${m.pid}/fd`)].length;
      const r = await run("sh", [
        "-c",
        `ulimit -n 4096 && exec "$0" run -A "$1" "$2" ${n} ${n}`,
        Deno.execPath(),
        script,
        m.dir,
      ]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /open 1000\nclosed/);
      for (const i of [0, 1, n / 2, n - 1]) {
        const got = await env.s3.getObject(env.bucket, `w/${i}`);
        assert.equal(new TextDecoder().decode(got.body), `${m.dir}/w/${i}`);
      }
      const keys = await listKeys(env, "w/");
      assert.equal(keys.length, n, "every written file is an object");
      const fdsAfter = [...Deno.readDirSync(`/proc/${m.pid}/fd`)].length;
      console.log(`1,000 open files: the mount's fds ${fdsBefore} before, ${fdsAfter} after`);
      assert.ok(fdsAfter <= fdsBefore + 4, `the mount leaks fds: ${fdsBefore} → ${fdsAfter}`);
      await m.stop();
    });
  },
});

const enc = new TextEncoder();

async function listKeys(env: { s3: Env["s3"]; bucket: string }, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await env.s3.listObjects(env.bucket, { prefix, continuationToken: token });
    keys.push(...page.objects.map((o) => o.key));
    token = page.nextContinuationToken;
  } while (token);
  return keys;
}

type Env = Parameters<Parameters<typeof withEnv>[0]>[0];

Deno.test({
  name:
    "resources: a directory of 200,000 objects listed while names are added and removed from outside: no name twice, none missing that existed throughout",
  ignore: !canMount,
  async fn() {
    await withEnv(async (env) => {
      const stable = 200_000, volatile = 2_000;
      const t0 = Date.now();
      const stableNames = Array.from(
        { length: stable },
        (_, i) => `s${String(i).padStart(6, "0")}`,
      );
      // Volatile names interleave with the stable ones, so removals land all along the listing.
      const volatileNames = Array.from(
        { length: volatile },
        (_, i) => `s${String(i * (stable / volatile)).padStart(6, "0")}v`,
      );
      const empty = new Uint8Array(0);
      await fillBucket(
        env.minio,
        env.bucket,
        [...stableNames, ...volatileNames].map((n) => `big/${n}`),
      );
      const filled = Date.now();
      const m = await env.mount([]);
      let churning = true;
      let added = 0, removed = 0;
      const churn = (async () => {
        for (let i = 0; churning; i++) {
          const at = String((i * 7919) % stable).padStart(6, "0");
          await env.s3.putObject(env.bucket, `big/s${at}n${i}`, empty);
          added++;
          if (i < volatile) {
            await env.s3.deleteObject(env.bucket, `big/${volatileNames[i]}`);
            removed++;
          }
        }
      })();
      const r = await run("ls", ["-f", `${m.dir}/big`]);
      churning = false;
      await churn;
      assert.equal(r.code, 0, r.stderr);
      const listed = r.stdout.split("\n").filter((l) => l !== "" && l !== "." && l !== "..");
      const seen = new Set<string>();
      const twice = listed.filter((n) => seen.has(n) || !seen.add(n));
      const missing = stableNames.filter((n) => !seen.has(n));
      console.log(
        `200,000 objects: filled in ${
          ((filled - t0) / 1000).toFixed(0)
        } s, listed ${listed.length} ` +
          `names in ${((Date.now() - filled) / 1000).toFixed(0)} s while ${added} were added ` +
          `and ${removed} removed; ${twice.length} twice, ${missing.length} missing`,
      );
      assert.deepEqual(twice.slice(0, 10), [], "no name listed twice");
      assert.deepEqual(missing.slice(0, 10), [], "no name missing that existed throughout");
      await m.stop();
    }, { inMemory: true });
  },
});
