import assert from "node:assert/strict";
import {
  classifyFetchError,
  hasDotSegment,
  isFetchBlockedPort,
  TransportError,
} from "./fetch_http_handler.ts";

Deno.test("hasDotSegment() finds . and .. path segments only", () => {
  assert.equal(hasDotSegment("a/../b"), true);
  assert.equal(hasDotSegment("./x"), true);
  assert.equal(hasDotSegment("a/."), true);
  assert.equal(hasDotSegment("a/.../b"), false);
  assert.equal(hasDotSegment(".hidden/x.."), false);
});

Deno.test("isFetchBlockedPort() refuses fetch's bad ports and allows the usual S3 ports", () => {
  for (const p of [1, 22, 6000, 6667, 10080]) assert.equal(isFetchBlockedPort(p), true, `${p}`);
  for (const p of [80, 443, 8080, 9000, 39123]) assert.equal(isFetchBlockedPort(p), false, `${p}`);
});

Deno.test("classifyFetchError() derives a Node-style code from Deno's fetch errors", () => {
  const wrap = (text: string) => new TypeError("fetch failed", { cause: new Error(text) });
  const cases: [string, string][] = [
    [
      "client error (Connect): tcp connect error: Connection refused (os error 111)",
      "ECONNREFUSED",
    ],
    ["client error (Connect): dns error: failed to lookup address information", "ENOTFOUND"],
    ["connection reset by peer", "ECONNRESET"],
    ["invalid peer certificate: UnknownIssuer", "ERR_TLS_HANDSHAKE"],
    ["something new", "ENETWORK"],
  ];
  for (const [text, code] of cases) {
    const err = classifyFetchError(wrap(text));
    assert.ok(err instanceof TransportError);
    assert.equal(err.code, code);
  }
});
