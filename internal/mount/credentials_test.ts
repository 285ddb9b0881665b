import assert from "node:assert/strict";
import {
  parseIni,
  resolveCredentials,
  watchedProfile,
  writeCredentialsFile,
} from "./credentials.ts";

function env(vars: Record<string, string>) {
  return { get: (k: string) => vars[k] };
}

Deno.test("parseIni() reads profiles, ignoring comments and the 'profile' prefix", () => {
  const p = parseIni(
    "# c\n[default]\naws_access_key_id = A\n[profile x]\nAWS_SECRET_ACCESS_KEY=s\n",
  );
  assert.equal(p.get("default")?.aws_access_key_id, "A");
  assert.equal(p.get("x")?.aws_secret_access_key, "s");
});

Deno.test("resolveCredentials() prefers environment keys, then the named profile file", async () => {
  const e = await resolveCredentials(env({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" }));
  assert.equal(e.kind, "env");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/credentials`;
  await writeCredentialsFile(path, "vol", { accessKeyId: "k1", secretAccessKey: "s1" });
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const f = await resolveCredentials(
    env({ AWS_SHARED_CREDENTIALS_FILE: path, AWS_PROFILE: "vol" }),
  );
  assert.equal(f.kind, "file");
  await assert.rejects(
    resolveCredentials(env({ AWS_SHARED_CREDENTIALS_FILE: path, AWS_PROFILE: "other" })),
    /profile "other"/,
  );
  await assert.rejects(
    resolveCredentials(env({ AWS_SHARED_CREDENTIALS_FILE: `${dir}/missing` })),
    /Cannot read credentials file/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("watchedProfile() returns rotated credentials after the file changes", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/credentials`;
  await writeCredentialsFile(path, "p", { accessKeyId: "old", secretAccessKey: "s-old" });
  const provider = watchedProfile(path, "p");
  assert.equal((await provider()).accessKeyId, "old");
  await writeCredentialsFile(path, "p", {
    accessKeyId: "new",
    secretAccessKey: "s-new",
    sessionToken: "t",
  });
  // Make the change visible even on coarse mtime clocks, then wait out the 1 s check interval.
  await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
  await new Promise((r) => setTimeout(r, 1100));
  const c = await provider();
  assert.equal(c.accessKeyId, "new");
  assert.equal(c.sessionToken, "t");
  await Deno.remove(dir, { recursive: true });
});
