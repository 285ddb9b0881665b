/**
 * Startup failures of `s3csi mount`: each is one clear line on stderr, a
 * non-zero exit, and nothing left mounted. Checked for the mistakes users
 * make: a missing bucket, wrong credentials, an endpoint nothing listens
 * on, a mount point that does not exist or already has a mount on it.
 */
import assert from "node:assert/strict";
import { freePort } from "../support/mod.ts";
import { canMount, type Env, isMounted, mountFailure, withEnv } from "./harness.ts";

/** The stderr lines meant for people (the JSON log lines excluded). */
function humanLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{"));
}

async function expectFailure(
  env: Env,
  args: string[],
  pattern: RegExp,
  credentials: Record<string, string> = env.credentials,
): Promise<void> {
  const dir = args[1];
  const r = await mountFailure(args, credentials);
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
  const lines = humanLines(r.stderr);
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^s3csi mount: /);
  assert.match(lines[0], pattern);
  assert.equal(r.stdout, "", "no ready line");
  assert.equal(await isMounted(dir), false, `nothing mounted on "${dir}"`);
}

async function mountDir(env: Env, name: string): Promise<string> {
  const dir = `${env.work}/${name}`;
  await Deno.mkdir(dir);
  return dir;
}

Deno.test({
  name: "s3csi mount exits with one line when the bucket does not exist",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const dir = await mountDir(env, "m");
      await expectFailure(
        env,
        ["no-such-bucket-here", dir, "--endpoint-url", env.minio.endpoint],
        /Bucket "no-such-bucket-here" does not exist/,
      );
    }),
});

Deno.test({
  name: "s3csi mount exits with one line when the credentials are wrong",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const dir = await mountDir(env, "m");
      const wrong = { ...env.credentials, AWS_SECRET_ACCESS_KEY: "not-the-secret-0123456789" };
      await expectFailure(
        env,
        [env.bucket, dir, "--endpoint-url", env.minio.endpoint],
        /Access denied to bucket/,
        wrong,
      );
      const r = await mountFailure([env.bucket, dir, "--endpoint-url", env.minio.endpoint], wrong);
      assert.ok(!r.stderr.includes("not-the-secret"), "the secret is never printed");
    }),
});

Deno.test({
  name: "s3csi mount exits with one line when the endpoint is unreachable",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const dir = await mountDir(env, "m");
      await expectFailure(
        env,
        [env.bucket, dir, "--endpoint-url", `http://127.0.0.1:${freePort()}`],
        /Cannot reach the S3 endpoint/,
      );
    }),
});

Deno.test({
  name: "s3csi mount exits with one line when the mount point is missing or busy",
  ignore: !canMount,
  fn: () =>
    withEnv(async (env) => {
      const missing = `${env.work}/does-not-exist`;
      await expectFailure(
        env,
        [env.bucket, missing, "--endpoint-url", env.minio.endpoint],
        /Mount point ".*does-not-exist" does not exist/,
      );

      const first = await env.mount();
      const r = await mountFailure(
        [env.bucket, first.dir, "--endpoint-url", env.minio.endpoint],
        env.credentials,
      );
      assert.equal(r.code, 1);
      const lines = humanLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /Mount point ".*" is busy/);
      const mounts = (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")
        .filter((l) => l.split(" ")[4] === first.dir);
      assert.equal(mounts.length, 1, "the first mount is still the only one");
      await Deno.writeTextFile(`${first.dir}/still-works`, "yes");
      assert.ok(await env.s3.headObject(env.bucket, "still-works"));
    }),
});
