/**
 * Round trips through a real mount: files written with `cp` and `dd` come
 * back byte for byte, read through the same mount, through a fresh mount (so
 * the bytes really come from S3, not the page cache) and directly from S3.
 * The sizes sit on the edges that matter: empty, one byte, the kernel's
 * 128 KiB request size and the 8 MiB part size (upload and ranged GET), and
 * a 100 MiB file of many parts.
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
