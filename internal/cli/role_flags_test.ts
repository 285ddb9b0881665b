import assert from "node:assert/strict";
import { UsageError } from "./flags.ts";
import { logLevel, s3Connection } from "./role_flags.ts";

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
      { ...base, "endpoint-url": "http://s3:80", "ca-bundle": "/ca.pem", "aws-max-attempts": 4 },
      true,
    ),
    {
      region: "us-east-1",
      endpointUrl: "http://s3:80",
      forcePathStyle: true,
      caBundlePath: "/ca.pem",
      maxAttempts: 4,
    },
  );
});

Deno.test("logLevel() takes --debug as --log-level debug", () => {
  assert.equal(logLevel({ "log-level": "warn" }), "warn");
  assert.equal(logLevel({ "log-level": "warn", debug: true }), "debug");
  assert.equal(logLevel({}), "info");
});
