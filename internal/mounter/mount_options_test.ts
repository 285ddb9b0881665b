import assert from "node:assert/strict";
import { InvalidArgumentError } from "../errors/mod.ts";
import { applyFsGroup, parseMountOptions, toMountArgs } from "./mount_options.ts";

const DRIVER = { region: "us-east-1", endpointUrl: "http://s3.local:8000", forcePathStyle: true };
const CTX = { cacheRoot: "/var/lib/kubelet/plugins/s3.csi.scality.com/cache" };

Deno.test("parseMountOptions() reads key, key=value, key value and leading dashes", () => {
  assert.equal(parseMountOptions(["uid=1000"], CTX).uid, 1000);
  assert.equal(parseMountOptions(["uid 1000"], CTX).uid, 1000);
  assert.deepEqual(parseMountOptions(["--metadata-ttl=60"], CTX).metadataTtl, {
    kind: "seconds",
    s: 60,
  });
  assert.equal(parseMountOptions(["  Allow_Other "], CTX).allowOther, true);
  assert.equal(parseMountOptions(["-allow-delete"], CTX).allowDelete, true);
  // "=" inside a value after a space split stays in the value.
  assert.equal(parseMountOptions(["prefix a=b/"], CTX).prefix, "a=b/");
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
  assert.deepEqual(toMountArgs(o, DRIVER), [
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
    "--endpoint-url",
    "http://s3.local:8000",
    "--force-path-style",
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

Deno.test("parseMountOptions() refuses the driver's S3 settings and process flags, with the table's reason", () => {
  const cases: Array<[string, RegExp]> = [
    ["virtual-hosted-style", /"virtual-hosted-style": refused by policy/],
    ["ca-bundle=/etc/ca.pem", /"ca-bundle": refused by policy/],
    ["s3-endpoint-url=http://x", /"s3-endpoint-url": refused by policy: .*endpoint/],
    ["f", /"f": refused by policy: the driver manages the mount process/],
    ["log-level=debug", /"log-level": refused by policy: mount logs/],
    ["-o allow-delete", /"o": refused by policy: fstab-style/],
    ["no-sign-request", /"no-sign-request": refused by policy: credentials/],
  ];
  for (const [flag, re] of cases) {
    assert.throws(() => parseMountOptions([flag], CTX), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, `${flag}: ${err}`);
      assert.match(err.message, re);
      return true;
    });
  }
});

Deno.test("parseMountOptions() checks values with the same kinds as s3csi mount", () => {
  assert.throws(() => parseMountOptions(["max-threads=0"], CTX), /"max-threads": 0 is below/);
  assert.throws(() => parseMountOptions(["write-part-size=1024"], CTX), /"write-part-size"/);
  assert.throws(() => parseMountOptions(["sse=des"], CTX), /"sse": "des" is not one of/);
  assert.throws(() => parseMountOptions(["region=EU West"], CTX), /"region"/);
  assert.throws(() => parseMountOptions(["metadata-ttl=soon"], CTX), /"metadata-ttl"/);
  const o = parseMountOptions(["debug-crt", "d", "metadata-ttl=0", "aws-max-attempts=4"], CTX);
  assert.equal(o.debug, true);
  assert.deepEqual(o.metadataTtl, { kind: "minimal" });
  assert.equal(o.awsMaxAttempts, 4);
});

Deno.test("toMountArgs() gives the driver's connection and lets the volume's region and attempts win", () => {
  const vhost = {
    region: "us-east-1",
    forcePathStyle: false,
    caBundlePath: "/ca.pem",
    maxAttempts: 5,
  };
  assert.deepEqual(toMountArgs(parseMountOptions([], CTX), vhost), [
    "--region",
    "us-east-1",
    "--virtual-hosted-style",
    "--ca-bundle",
    "/ca.pem",
    "--aws-max-attempts",
    "5",
  ]);
  const own = parseMountOptions(["region=eu-west-1", "aws-max-attempts=2", "sse aws:kms"], CTX);
  const args = toMountArgs(own, vhost);
  assert.deepEqual(args.slice(args.indexOf("--region"), args.indexOf("--region") + 2), [
    "--region",
    "eu-west-1",
  ]);
  assert.equal(args[args.indexOf("--aws-max-attempts") + 1], "2");
  assert.equal(args[args.indexOf("--sse") + 1], "aws:kms");
});

Deno.test("parseMountOptions() accepts mount-s3's force-path-style without effect: the driver's addressing wins", () => {
  const opts = parseMountOptions(["force-path-style", "allow-delete"], CTX);
  const vhost = { region: "us-east-1", forcePathStyle: false };
  const args = toMountArgs(opts, vhost);
  assert.ok(args.includes("--virtual-hosted-style"));
  assert.ok(!args.includes("--force-path-style"));
  assert.ok(args.includes("--allow-delete"));
  assert.throws(() => parseMountOptions(["force-path-style=yes"], CTX), /takes no value/);
});
