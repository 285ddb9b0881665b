/**
 * `--max-memory` against a real memory cgroup. The mount process runs in a
 * cgroup with a memory limit and the `--max-memory` the reconciler derives
 * from that limit for a Mountpoint Pod (`maxMemoryMiB`), while four
 * sequential readers and two writers work at once. The kernel OOM-kills it
 * if the mount's memory goes past the limit, so the test proves that the
 * mount throttles instead: it stays alive, every byte read is right and
 * every file written arrives whole. The cgroup's peak is printed.
 */
import assert from "node:assert/strict";
import { canMount, MIB, run, withEnv } from "./harness.ts";
import { memoryCgroup, memoryCgroupKind } from "../support/memory_cgroup.ts";
import { maxMemoryMiB } from "../../internal/reconciler/mountpoint_pod.ts";

const LIMIT = 640 * MIB;
const MAX_MEMORY_MIB = maxMemoryMiB(LIMIT);
const READERS = 4;
const WRITERS = 2;
const READ_SIZE = 192 * MIB;
const WRITE_SIZE = 96 * MIB;

/** Bytes that differ per object and per offset (xorshift32), cheap to make. */
function pattern(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(size / 4);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer);
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name:
    "a mount in a memory cgroup, with the --max-memory the reconciler gives its limit, throttles 4 readers and 2 writers and is not OOM-killed",
  ignore: !canMount || memoryCgroupKind() === null,
  async fn() {
    await withEnv(async (env) => {
      const expected: string[] = [];
      for (let i = 0; i < READERS; i++) {
        const data = pattern(READ_SIZE, i + 1);
        expected.push(await sha256(data));
        await env.s3.putObject(env.bucket, `r${i}`, data);
      }
      const sources: string[] = [];
      const written: string[] = [];
      for (let i = 0; i < WRITERS; i++) {
        const data = pattern(WRITE_SIZE, 100 + i);
        written.push(await sha256(data));
        sources.push(`${env.work}/src${i}`);
        await Deno.writeFile(sources[i], data);
      }
      const cgroup = await memoryCgroup(LIMIT);
      try {
        const m = await env.mount(["--max-memory", String(MAX_MEMORY_MIB)], {
          cgroupProcs: cgroup.procs,
        });
        const readers = Array.from(
          { length: READERS },
          (_, i) => run("sha256sum", [`${m.dir}/r${i}`]),
        );
        const writers = sources.map((src, i) => run("cp", [src, `${m.dir}/w${i}`]));
        const [reads, writes] = await Promise.all([Promise.all(readers), Promise.all(writers)]);
        const peakMiB = (cgroup.peak() / MIB).toFixed(0);
        assert.equal(cgroup.oomKills(), 0, `the mount was OOM-killed (peak ${peakMiB} MiB)`);
        reads.forEach((r, i) => {
          assert.equal(r.code, 0, `sha256sum r${i}: ${r.stderr}`);
          assert.equal(r.stdout.split(" ")[0], expected[i], `r${i} read wrong bytes`);
        });
        writes.forEach((w, i) => assert.equal(w.code, 0, `cp w${i}: ${w.stderr}`));
        for (let i = 0; i < WRITERS; i++) {
          const got = await env.s3.getObject(env.bucket, `w${i}`);
          assert.equal(got.body.byteLength, WRITE_SIZE, `w${i} is incomplete`);
          assert.equal(
            await sha256(got.body as Uint8Array<ArrayBuffer>),
            written[i],
            `w${i} differs`,
          );
        }
        console.log(
          `cgroup peak ${peakMiB} MiB of ${LIMIT / MIB} for --max-memory ${MAX_MEMORY_MIB}`,
        );
        await m.stop();
      } finally {
        await cgroup.remove();
      }
    });
  },
});
