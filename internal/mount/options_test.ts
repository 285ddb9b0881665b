import assert from "node:assert/strict";
import { parseFlags, usage, UsageError } from "../cli/mod.ts";
import { MOUNT_OPTIONS, mountArgs, type MountFlags, mountFlags } from "./options.ts";

const fail = (name: string, why: string): never => {
  throw new UsageError(`${name}: ${why}`);
};

Deno.test("mountArgs() gives flags that s3csi mount's parser reads back to the same options", () => {
  const given: Partial<MountFlags> = {
    allowDelete: true,
    allowOther: true,
    readOnly: true,
    uid: 1000,
    gid: 0,
    fileMode: 0o640,
    dirMode: 0o750,
    region: "eu-west-1",
    endpointUrl: "http://s3.local:8000",
    virtualHostedStyle: true,
    caBundle: "/ca.pem",
    awsMaxAttempts: 4,
    prefix: "a/b/",
    metadataTtl: { kind: "seconds", s: 60 },
    cache: "/cache/v",
    maxCacheSize: 100,
    readPartSize: 1048576,
    writePartSize: 5242880,
    maxThreads: 8,
    maxMemory: 256,
    storageClass: "STANDARD_IA",
    sse: "aws:kms",
    sseKmsKeyId: "key",
    userAgentPrefix: "ua",
    foreground: true,
    debug: true,
    logLevel: "warn",
    logFile: "/log",
  };
  const { values, positionals } = parseFlags(
    ["b", "/mnt", ...mountArgs(given)],
    MOUNT_OPTIONS,
    true,
  );
  assert.deepEqual(positionals, ["b", "/mnt"]);
  const back = mountFlags(values, fail) as Record<string, unknown>;
  for (const [field, value] of Object.entries(given)) assert.deepEqual(back[field], value, field);
  assert.equal(back.allowRoot, false);
  assert.deepEqual(
    mountArgs({ metadataTtl: { kind: "indefinite" }, fileMode: 0o7 }),
    ["--file-mode", "0007", "--metadata-ttl", "indefinite"],
  );
});

Deno.test("mountFlags() refuses options that contradict each other, on the command line too", () => {
  const parse = (args: string[]) => mountFlags(parseFlags(args, MOUNT_OPTIONS, true).values, fail);
  assert.throws(() => parse(["--allow-other", "--allow-root"]), /allow-root: conflicts/);
  assert.throws(() => parse(["--sse-kms-key-id", "k"]), /sse-kms-key-id: needs/);
  assert.throws(() => parse(["--sse", "AES256", "--sse-kms-key-id", "k"]), /sse-kms-key-id/);
  assert.equal(parse(["--sse", "aws:kms:dsse", "--sse-kms-key-id", "k"]).sseKmsKeyId, "k");
  assert.throws(() => parse(["--prefix", "a"]), /Invalid value for --prefix: "a" must end with/);
  assert.equal(parse(["--ro", "--debug-crt"]).readOnly, true);
});

Deno.test("s3csi mount --help lists every option of the table", () => {
  const text = usage("s3csi mount", MOUNT_OPTIONS);
  for (const name of Object.keys(MOUNT_OPTIONS)) assert.match(text, new RegExp(`--${name}\\b`));
});
