import assert from "node:assert/strict";
import { InvalidArgumentError } from "../errors/mod.ts";
import { applyFsGroup, parseMountOptions, splitOption, toMountArgs } from "./mount_options.ts";

const CTX = { cacheRoot: "/var/lib/kubelet/plugins/s3.csi.scality.com/cache" };

Deno.test("splitOption() accepts key, key=value, key value and leading dashes", () => {
  assert.deepEqual(splitOption("allow-delete"), { key: "allow-delete" });
  assert.deepEqual(splitOption("uid=1000"), { key: "uid", value: "1000" });
  assert.deepEqual(splitOption("uid 1000"), { key: "uid", value: "1000" });
  assert.deepEqual(splitOption("--metadata-ttl=60"), { key: "metadata-ttl", value: "60" });
  assert.deepEqual(splitOption("  Allow_Other "), { key: "allow-other" });
  // "=" inside a value after a space split stays in the value.
  assert.deepEqual(splitOption("prefix a=b/"), { key: "prefix", value: "a=b/" });
});

Deno.test("parseMountOptions() normalises, de-duplicates and maps the seeds' options", () => {
  const o = parseMountOptions(
    [
      "allow-delete",
      "--allow-delete",
      "region=eu-west-1",
      "uid 1000",
      "gid=2000",
      "file-mode=0640",
      "dir-mode 750",
      "metadata-ttl indefinite",
      "prefix=data/",
      "ro",
    ],
    CTX,
  );
  assert.equal(o.allowDelete, true);
  assert.equal(o.readOnly, true);
  assert.equal(o.region, "eu-west-1");
  assert.equal(o.uid, 1000);
  assert.equal(o.fileMode, 0o640);
  assert.equal(o.dirMode, 0o750);
  assert.deepEqual(o.metadataTtl, { kind: "indefinite" });
  assert.deepEqual(toMountArgs(o), [
    "--allow-delete",
    "--read-only",
    "--uid",
    "1000",
    "--gid",
    "2000",
    "--file-mode",
    "0640",
    "--dir-mode",
    "0750",
    "--region",
    "eu-west-1",
    "--prefix",
    "data/",
    "--metadata-ttl",
    "indefinite",
  ]);
});

Deno.test("parseMountOptions() refuses options that escape the administrator's control, naming them", () => {
  const cases: Array<[string[], RegExp]> = [
    [["endpoint-url=http://evil"], /"endpoint-url".*administrator/],
    [["profile default"], /"profile"/],
    [["cache=/etc"], /"cache".*outside/],
    [["cache=../../../etc"], /"cache".*outside/],
    [["no-such-option"], /"no-such-option": unknown option/],
    [["uid=1", "uid=2"], /"uid".*twice/],
    [["uid=abc"], /"uid"/],
    [["allow-other", "allow-root"], /"allow-root"/],
    [["prefix=nodash"], /"prefix".*end with/],
    [["sse-kms-key-id=k"], /"sse-kms-key-id"/],
    [["allow-delete=no"], /takes no value/],
  ];
  for (const [flags, re] of cases) {
    assert.throws(() => parseMountOptions(flags, CTX), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, `${flags}: ${err}`);
      assert.match(err.message, re);
      return true;
    });
  }
  const ok = parseMountOptions(["cache=volume-a"], CTX);
  assert.equal(ok.cache, `${CTX.cacheRoot}/volume-a`);
});

Deno.test("applyFsGroup() sets gid, allow-other and group-writable modes unless options say otherwise", () => {
  const base = parseMountOptions([], CTX);
  const g = applyFsGroup(base, "3000");
  assert.equal(g.gid, 3000);
  assert.equal(g.allowOther, true);
  assert.equal(g.fileMode, 0o660);
  assert.equal(g.dirMode, 0o770);
  const kept = applyFsGroup(parseMountOptions(["gid=5", "file-mode=0600"], CTX), "3000");
  assert.equal(kept.gid, 5);
  assert.equal(kept.allowOther, false);
  assert.throws(() => applyFsGroup(base, "staff"), /volume_mount_group/);
  assert.equal(applyFsGroup(base, undefined), base);
});
