/**
 * Round trips through a real mount: files written with `cp` and `dd` come
 * back byte for byte, read through the same mount, through a fresh mount (so
 * the bytes really come from S3, not the page cache) and directly from S3.
 * The sizes sit on the edges that matter: empty, one byte, the kernel's
 * 128 KiB request size and the 8 MiB part size (upload and ranged GET), and
 * a 100 MiB file of many parts. Last, parallel readers of large objects on
 * a small memory budget, where part buffers are recycled between readers.
 */
import assert from "node:assert/strict";
import {
  canMount,
  type Env,
  KIB,
  MIB,
  objectSha256,
  ok,
  randomFile,
  sha256,
  sha256File,
  withEnv,
} from "./harness.ts";

const SIZES = [0, 1, 128 * KIB - 1, 128 * KIB, 128 * KIB + 1, 8 * MIB - 1, 8 * MIB, 8 * MIB + 1];

/** Writes each size with `tool`, then checks size and SHA-256 on three paths. */
async function roundTrip(env: Env, sizes: number[], tool: "cp" | "dd"): Promise<void> {
  const writer = await env.mount();
  const expected = new Map<string, { size: number; sha: string }>();
  for (const size of sizes) {
    const name = `${tool}-${size}.bin`;
    const src = `${env.work}/${name}`;
    const sha = await randomFile(src, size);
    if (tool === "cp") await ok("cp", [src, `${writer.dir}/${name}`]);
    else await ok("dd", [`if=${src}`, `of=${writer.dir}/${name}`, "bs=1M", "status=none"]);
    await Deno.remove(src);
    expected.set(name, { size, sha });
  }
  const reader = await env.mount(["--read-only"]);
  for (const [name, { size, sha }] of expected) {
    const info = await env.s3.headObject(env.bucket, name);
    assert.equal(info?.size, size, `size of object "${name}" in S3`);
    assert.equal(await objectSha256(env, name), sha, `S3 content of "${name}"`);
    assert.equal(await sha256File(`${writer.dir}/${name}`), sha, `"${name}" via the writer`);
    const st = await Deno.stat(`${reader.dir}/${name}`);
    assert.equal(st.size, size, `size of "${name}" via a fresh mount`);
    assert.equal(await sha256File(`${reader.dir}/${name}`), sha, `"${name}" via a fresh mount`);
  }
}

Deno.test({
  name: "s3csi mount round-trips files of 0 B to 8 MiB + 1 written with cp",
  ignore: !canMount,
  fn: () => withEnv((env) => roundTrip(env, SIZES, "cp")),
});

Deno.test({
  name: "s3csi mount round-trips files of 0 B to 8 MiB + 1 written with dd bs=1M",
  ignore: !canMount,
  fn: () => withEnv((env) => roundTrip(env, SIZES, "dd")),
});

Deno.test({
  name: "s3csi mount round-trips a 100 MiB file written with cp",
  ignore: !canMount,
  fn: () => withEnv((env) => roundTrip(env, [100 * MIB], "cp")),
});

Deno.test({
  name:
    "s3csi mount serves parallel readers of large objects byte for byte while reusing part buffers",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const size = 40 * MIB + 12345;
      const expected: string[] = [];
      for (let k = 0; k < 4; k++) {
        // Different bytes in every object and every MiB, so a buffer served to the wrong read shows.
        const data = new Uint8Array(size);
        for (let i = 0; i < size; i += 4096) data[i] = (i / 4096 + k * 7) & 0xff;
        crypto.getRandomValues(data.subarray(0, 65536));
        await env.s3.putObject(env.bucket, `big${k}`, data);
        expected.push(await sha256(data));
      }
      // A small budget: the four streams' parts come and go, their buffers through the pool.
      const m = await env.mount(["--read-only", "--max-memory", "320", "--debug"]);
      const readers = [
        sha256File(`${m.dir}/big0`),
        sha256File(`${m.dir}/big1`),
        // Small reads: many requests per part, the part kept across them.
        ok("sh", ["-c", `dd if=${m.dir}/big2 bs=4k status=none | sha256sum`]).then((o) =>
          o.split(" ")[0]
        ),
        ok("sh", ["-c", `dd if=${m.dir}/big3 bs=1M status=none | sha256sum`]).then((o) =>
          o.split(" ")[0]
        ),
      ];
      assert.deepEqual(await Promise.all(readers), expected);
      // Each handle logs its prefetch statistics when the kernel releases it.
      let closed: { pool: { hits: number } }[] = [];
      for (let i = 0; i < 50 && closed.length < 4; i++) {
        await new Promise((r) => setTimeout(r, 100));
        closed = m.output().split("\n").filter((l) => l.includes('"Read handle closed"'))
          .map((l) => JSON.parse(l));
      }
      assert.equal(closed.length, 4);
      assert.ok(Math.max(...closed.map((c) => c.pool.hits)) > 0, "no part buffer was reused");
    }),
});
