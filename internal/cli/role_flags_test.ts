import assert from "node:assert/strict";
import { parseFlags, UsageError } from "./flags.ts";
import { logLevel, S3_FLAGS, s3Connection } from "./role_flags.ts";

Deno.test("s3Connection() keeps each role's addressing default unless a flag says otherwise", () => {
  const base = { region: "us-east-1" };
  // The CSI roles: path-style by default.
  assert.equal(s3Connection(base, true).forcePathStyle, true);
  assert.equal(s3Connection({ ...base, "virtual-hosted-style": true }, true).forcePathStyle, false);
  // s3csi mount against AWS: virtual-hosted by default.
  assert.equal(s3Connection(base, false).forcePathStyle, false);
  assert.equal(s3Connection({ ...base, "force-path-style": true }, false).forcePathStyle, true);
  assert.throws(
    () => s3Connection({ ...base, "force-path-style": true, "virtual-hosted-style": true }, true),
    UsageError,
  );
  assert.deepEqual(
    s3Connection(
      {
        ...base,
        "endpoint-url": "http://s3:80",
        "ca-bundle": "/ca.pem",
        "aws-max-attempts": 4,
        "s3-timeout": 5,
      },
      true,
    ),
    {
      region: "us-east-1",
      endpointUrl: "http://s3:80",
      forcePathStyle: true,
      caBundlePath: "/ca.pem",
      maxAttempts: 4,
      idleTimeoutMs: 5000,
    },
  );
});

Deno.test("--s3-timeout takes whole seconds from 1 to 3600", () => {
  const parse = (v: string) => parseFlags(["--s3-timeout", v], S3_FLAGS).values["s3-timeout"];
  assert.equal(parse("5"), 5);
  for (const bad of ["0", "3601", "1.5", "-1", "x"]) {
    assert.throws(() => parse(bad), UsageError, bad);
  }
});

Deno.test("logLevel() takes --debug as --log-level debug", () => {
  assert.equal(logLevel({ "log-level": "warn" }), "warn");
  assert.equal(logLevel({ "log-level": "warn", debug: true }), "debug");
  assert.equal(logLevel({}), "info");
});

Deno.test("--region takes the names S3-compatible stores use and refuses what could change the URL", () => {
  const parse = (region: string) =>
    parseFlags(["--region", region], S3_FLAGS).values.region as string;
  assert.equal(parse("RegionOne"), "RegionOne");
  assert.equal(parse("us-east-1"), "us-east-1");
  assert.equal(parse("site_a.dc2"), "site_a.dc2");
  for (const bad of ["evil.com/x", "a b", "x@y", ""]) {
    assert.throws(() => parse(bad), UsageError, bad);
  }
});
