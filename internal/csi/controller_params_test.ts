import assert from "node:assert/strict";
import { InvalidArgumentError } from "../errors/mod.ts";
import { parseStorageParams } from "./controller_server.ts";
import { credentialsFromSecrets } from "./credentials.ts";
import { credentialsFromEnv } from "../s3/credentials.ts";
import { requireSupported, unsupportedReason } from "./capabilities.ts";

function field(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    return err.field;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

Deno.test("parseStorageParams() accepts the documented parameters and reserved keys", () => {
  assert.deepEqual(parseStorageParams({}), { mode: "dedicated" });
  assert.deepEqual(
    parseStorageParams({
      bucketNaming: "shared",
      bucketName: "team-bucket",
      s3Region: "eu-west-3",
      "csi.storage.k8s.io/pvc/name": "data",
    }),
    { mode: "shared", bucketName: "team-bucket", region: "eu-west-3" },
  );
});

Deno.test("parseStorageParams() names the parameter at fault", () => {
  assert.equal(field(() => parseStorageParams({ bucketPrefix: "x" })), "parameters.bucketPrefix");
  assert.equal(
    field(() => parseStorageParams({ bucketNaming: "per-pvc" })),
    "parameters.bucketNaming",
  );
  assert.equal(
    field(() => parseStorageParams({ bucketNaming: "shared" })),
    "parameters.bucketName",
  );
  assert.equal(
    field(() => parseStorageParams({ bucketNaming: "shared", bucketName: "a_b" })),
    "parameters.bucketName",
  );
  assert.equal(
    field(() => parseStorageParams({ bucketName: "only-in-shared" })),
    "parameters.bucketName",
  );
  assert.equal(
    field(() => parseStorageParams({ s3Region: "Not A Region" })),
    "parameters.s3Region",
  );
});

Deno.test("credentialsFromSecrets() reads the documented keys and names missing ones, not values", () => {
  assert.equal(credentialsFromSecrets({}, "provisioner"), undefined);
  assert.equal(credentialsFromSecrets(undefined, "provisioner"), undefined);
  assert.deepEqual(
    credentialsFromSecrets(
      { access_key_id: "AK", secret_access_key: "SK", session_token: "T" },
      "provisioner",
    ),
    { accessKeyId: "AK", secretAccessKey: "SK", sessionToken: "T" },
  );
  try {
    credentialsFromSecrets(
      { access_key_id: "AK", secret_access_key_typo: "topsecret-value" },
      "node-publish",
    );
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError);
    assert.equal(err.field, "secrets.secret_access_key");
    assert.match(err.message, /node-publish secret: missing key "secret_access_key"/);
    assert.ok(!err.message.includes("topsecret-value"));
  }
});

Deno.test("credentialsFromEnv() uses the standard AWS variables", () => {
  const env = (v: Record<string, string>) => ({ get: (k: string) => v[k] });
  assert.equal(credentialsFromEnv(env({})), undefined);
  assert.deepEqual(
    credentialsFromEnv(
      env({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b", AWS_SESSION_TOKEN: "c" }),
    ),
    { accessKeyId: "a", secretAccessKey: "b", sessionToken: "c" },
  );
});

Deno.test("unsupportedReason() accepts every access mode for mount and refuses block", () => {
  for (
    const mode of [
      "SINGLE_NODE_WRITER",
      "SINGLE_NODE_READER_ONLY",
      "MULTI_NODE_READER_ONLY",
      "MULTI_NODE_SINGLE_WRITER",
      "MULTI_NODE_MULTI_WRITER",
      "SINGLE_NODE_SINGLE_WRITER",
      "SINGLE_NODE_MULTI_WRITER",
    ]
  ) {
    assert.equal(
      unsupportedReason({ access_type: "mount", mount: {}, access_mode: { mode } }),
      undefined,
    );
  }
  assert.match(
    unsupportedReason({
      access_type: "block",
      block: {},
      access_mode: { mode: "SINGLE_NODE_WRITER" },
    })!,
    /block/,
  );
  assert.match(
    unsupportedReason({ access_type: "mount", mount: {}, access_mode: { mode: "UNKNOWN" } })!,
    /UNKNOWN/,
  );
  assert.match(
    unsupportedReason({
      access_type: "mount",
      mount: { fs_type: "ext4" },
      access_mode: { mode: "SINGLE_NODE_WRITER" },
    })!,
    /ext4/,
  );
  assert.equal(field(() => requireSupported([], "volume_capabilities")), "volume_capabilities");
});
