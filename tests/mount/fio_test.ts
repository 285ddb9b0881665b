/**
 * `fio` against a real mount: a sequential write job lays down 128 MiB with
 * crc32c verification headers in every 1 MiB block, and a sequential read
 * job on a fresh mount (so every byte comes from S3) checks each block.
 * The write job uses the options an S3 file system needs: no fallocate, the
 * file created when the job opens it (fio's layout pass would write the file
 * once and then reopen it without O_TRUNC, which S3 semantics refuse).
 */
import assert from "node:assert/strict";
import { canMount, MIB, run, withEnv } from "./harness.ts";

const SIZE = 128 * MIB;

interface FioJob {
  error: number;
  read: { io_bytes: number };
  write: { io_bytes: number };
}

async function fio(args: string[]): Promise<FioJob> {
  const r = await run("fio", ["--output-format=json", "--bs=1M", `--size=${SIZE}`, ...args]);
  assert.equal(r.code, 0, `fio ${args.join(" ")} failed: ${r.stderr}\n${r.stdout.slice(0, 2000)}`);
  // fio may print notes before the JSON document.
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf("{")));
  return json.jobs[0] as FioJob;
}

Deno.test({
  name: "fio sequential write with crc32c headers and sequential read verify through s3csi mount",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const writer = await env.mount();
      const w = await fio([
        "--name=seqwrite",
        `--filename=${writer.dir}/fio.dat`,
        "--rw=write",
        "--verify=crc32c",
        "--do_verify=0",
        "--fallocate=none",
        "--create_on_open=1",
        "--unlink=0",
      ]);
      assert.equal(w.error, 0);
      assert.equal(w.write.io_bytes, SIZE);
      assert.equal((await env.s3.headObject(env.bucket, "fio.dat"))?.size, SIZE);

      const reader = await env.mount(["--read-only"]);
      const r = await fio([
        "--name=seqread",
        `--filename=${reader.dir}/fio.dat`,
        "--rw=read",
        "--verify=crc32c",
      ]);
      assert.equal(r.error, 0);
      assert.equal(r.read.io_bytes, SIZE);

      // The verification is real: the same read job fails on a file without fio's headers.
      await env.s3.putObject(env.bucket, "plain.dat", new Uint8Array(2 * MIB));
      const bad = await run("fio", [
        "--name=badread",
        `--filename=${reader.dir}/plain.dat`,
        "--rw=read",
        "--bs=1M",
        "--size=2M",
        "--verify=crc32c",
      ]);
      assert.match(bad.stdout + bad.stderr, /verify: bad magic header/);
    }),
});
