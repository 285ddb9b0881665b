/**
 * The exit codes of `main.ts` (tested here so the unit tier, `internal cmd`,
 * runs it): each ending of a command gets its code in one place.
 */
import assert from "node:assert/strict";
import { EXIT, run } from "../main.ts";

/** Runs the program in-process; returns its exit code and what it wrote to stderr. */
async function runCaptured(argv: string[]): Promise<{ code: number; stderr: string[] }> {
  const stderr: string[] = [];
  const { error, log } = console;
  console.error = (...args: unknown[]) => stderr.push(args.join(" "));
  console.log = () => {};
  try {
    return { code: await run(argv), stderr };
  } finally {
    console.error = error;
    console.log = log;
  }
}

Deno.test("s3csi doctor refuses an unknown check group and a --skip of every group as usage errors", async () => {
  const unknown = await runCaptured(["doctor", "--skip", "local,nope"]);
  assert.equal(unknown.code, EXIT.usage);
  assert.match(unknown.stderr[0], /^s3csi doctor: Invalid value for --skip: "nope" is not one of/);
  const none = await runCaptured(["doctor", "--skip", "local,s3,cluster"]);
  assert.equal(none.code, EXIT.usage);
  assert.match(none.stderr[0], /--skip leaves no check to run/);
});

Deno.test("the reconciler without a usable kubeconfig exits 1 with one line", async () => {
  const missing = "/nonexistent/s3csi-kubeconfig";
  const r = await runCaptured(["reconciler", "--kubeconfig", missing]);
  assert.equal(r.code, EXIT.failure);
  assert.equal(r.stderr.length, 1);
  assert.match(
    r.stderr[0],
    /^s3csi reconciler: Cannot load kubeconfig "\/nonexistent\/s3csi-kubeconfig"/,
  );
  const bad = await runCaptured(["reconciler", "--mountpoint-memory-limit", "lots"]);
  assert.equal(bad.code, EXIT.usage);
});

Deno.test("usage errors exit 2 and point to --help", async () => {
  assert.equal((await runCaptured([])).code, 2);
  const unknown = await runCaptured(["nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr[0], /^s3csi: unknown command "nope"/);
  const bad = await runCaptured(["mount", "only-a-bucket"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr[0], /^s3csi mount: Expected a bucket and a mount point/);
  assert.match(bad.stderr[0], /Run 's3csi mount --help' for usage\.$/);
});

Deno.test("a startup failure of s3csi mount exits 1 with one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-main-" });
  try {
    const missing = `${dir}/missing`;
    const r = await runCaptured([
      "mount",
      "bucket",
      missing,
      "--foreground",
      "--endpoint-url",
      "http://127.0.0.1:9",
    ]);
    assert.equal(r.code, EXIT.failure);
    assert.equal(EXIT.failure, 1);
    assert.deepEqual(r.stderr, [`s3csi mount: Mount point "${missing}" does not exist`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
