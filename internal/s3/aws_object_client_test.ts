import assert from "node:assert/strict";
import {
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  NoSuchBucket,
  NoSuchKey,
  NoSuchUpload,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import {
  decodeUrlEncodedKey,
  type ErrorContext,
  parseContentRangeTotal,
  toS3Error,
} from "./aws_object_client.ts";
import { TransportError } from "./fetch_http_handler.ts";
import type { S3ErrorCode } from "./object_client.ts";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/** An error shaped like the SDK's generic service exception for `name` and `status`. */
function serviceError(name: string, status: number, fault: "client" | "server" = "client") {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : fault,
    $metadata: { httpStatusCode: status, requestId: "REQ123" },
    // Servers echo request details; the mapping must not copy them.
    message: `Signature mismatch for secret ${SECRET}`,
  });
}

function nodeError(code: string, name = "Error") {
  return Object.assign(new Error(`connect ${code} 10.0.0.1:443 key=${SECRET}`), { code, name });
}

const ctx: ErrorContext = { operation: "GetObject", bucket: "bkt", key: "dir/file" };

const table: [string, unknown, S3ErrorCode, ErrorContext?][] = [
  [
    "NoSuchKey exception",
    new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: "x" }),
    "NoSuchKey",
  ],
  [
    "NoSuchBucket exception",
    new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: "x" }),
    "NoSuchBucket",
  ],
  [
    "NoSuchUpload exception",
    new NoSuchUpload({ $metadata: { httpStatusCode: 404 }, message: "x" }),
    "NoSuchUpload",
  ],
  [
    "BucketAlreadyOwnedByYou exception",
    new BucketAlreadyOwnedByYou({ $metadata: { httpStatusCode: 409 }, message: "x" }),
    "BucketAlreadyOwnedByYou",
  ],
  [
    "BucketAlreadyExists exception",
    new BucketAlreadyExists({ $metadata: { httpStatusCode: 409 }, message: "x" }),
    "BucketAlreadyExists",
  ],
  ["bare 404 on HEAD object", serviceError("NotFound", 404), "NoSuchKey", {
    operation: "HeadObject",
    bucket: "b",
    key: "k",
    notFound: "NoSuchKey",
  }],
  ["bare 404 on HEAD bucket", serviceError("NotFound", 404), "NoSuchBucket", {
    operation: "HeadBucket",
    bucket: "b",
    notFound: "NoSuchBucket",
  }],
  ["bare 404 without context", serviceError("NotFound", 404), "Other"],
  ["PreconditionFailed", serviceError("PreconditionFailed", 412), "PreconditionFailed"],
  ["bare 412", serviceError("Unknown", 412), "PreconditionFailed"],
  [
    "ConditionalRequestConflict",
    serviceError("ConditionalRequestConflict", 409),
    "PreconditionFailed",
  ],
  ["InvalidRange", serviceError("InvalidRange", 416), "InvalidRange"],
  ["bare 416", serviceError("Unknown", 416), "InvalidRange"],
  ["BucketNotEmpty", serviceError("BucketNotEmpty", 409), "BucketNotEmpty"],
  ["InvalidBucketName", serviceError("InvalidBucketName", 400), "InvalidBucketName"],
  ["AccessDenied", serviceError("AccessDenied", 403), "AccessDenied"],
  ["InvalidAccessKeyId", serviceError("InvalidAccessKeyId", 403), "AccessDenied"],
  ["SignatureDoesNotMatch", serviceError("SignatureDoesNotMatch", 403), "AccessDenied"],
  ["ExpiredToken", serviceError("ExpiredToken", 400), "AccessDenied"],
  ["bare 403 on HEAD", serviceError("Forbidden", 403), "AccessDenied"],
  ["EntityTooSmall", serviceError("EntityTooSmall", 400), "EntityTooSmall"],
  ["InvalidPart", serviceError("InvalidPart", 400), "InvalidPart"],
  ["InvalidPartOrder", serviceError("InvalidPartOrder", 400), "InvalidPart"],
  ["503 SlowDown", serviceError("SlowDown", 503), "Throttled"],
  ["bare 503", serviceError("Unknown", 503), "Throttled"],
  ["429", serviceError("TooManyRequests", 429), "Throttled"],
  ["bare 429", serviceError("Unknown", 429), "Throttled"],
  ["500 InternalError", serviceError("InternalError", 500), "ServerError"],
  ["bare 502", serviceError("Unknown", 502), "ServerError"],
  ["unknown 400 code", serviceError("InvalidArgument", 400), "Other"],
  ["ECONNREFUSED", nodeError("ECONNREFUSED"), "NetworkError"],
  ["ECONNRESET as TimeoutError", nodeError("ECONNRESET", "TimeoutError"), "NetworkError"],
  ["ENOTFOUND", nodeError("ENOTFOUND"), "NetworkError"],
  ["ETIMEDOUT", nodeError("ETIMEDOUT"), "NetworkError"],
  ["TLS certificate", nodeError("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), "NetworkError"],
  ["TLS alt name", nodeError("ERR_TLS_CERT_ALTNAME_INVALID"), "NetworkError"],
  [
    "SDK TimeoutError",
    Object.assign(new Error("socket timed out"), { name: "TimeoutError" }),
    "NetworkError",
  ],
  ["fetch TransportError", new TransportError("ECONNREFUSED", "x"), "NetworkError"],
  ["Deno ConnectionRefused", new Deno.errors.ConnectionRefused("refused"), "NetworkError"],
  ["Deno ConnectionReset", new Deno.errors.ConnectionReset("reset"), "NetworkError"],
  ["network error as cause", new Error("wrapped", { cause: nodeError("EPIPE") }), "NetworkError"],
  ["AbortError", new DOMException("aborted", "AbortError"), "Aborted"],
  [
    "SDK AbortError",
    Object.assign(new Error("Request aborted"), { name: "AbortError" }),
    "Aborted",
  ],
  ["programming error", new TypeError(`bad ${SECRET}`), "Other"],
  ["non-error value", "boom", "Other"],
];

for (const [label, err, code, context] of table) {
  Deno.test(`toS3Error() maps ${label} to ${code}`, () => {
    const mapped = toS3Error(err, context ?? ctx);
    assert.equal(mapped.code, code);
    assert.ok(!mapped.message.includes(SECRET), `secret leaked: ${mapped.message}`);
    assert.equal(mapped.cause, undefined);
  });
}

Deno.test("toS3Error() keeps the HTTP status of service errors", () => {
  assert.equal(toS3Error(serviceError("SlowDown", 503), ctx).httpStatus, 503);
  assert.equal(toS3Error(nodeError("ECONNREFUSED"), ctx).httpStatus, undefined);
});

Deno.test("toS3Error() names the operation, bucket, key and codes in the message", () => {
  const mapped = toS3Error(serviceError("SignatureDoesNotMatch", 403), ctx);
  assert.equal(
    mapped.message,
    'GetObject failed for "bkt/dir/file": AccessDenied (HTTP 403, S3 code SignatureDoesNotMatch, request ID REQ123)',
  );
  const net = toS3Error(nodeError("ECONNREFUSED"), { operation: "HeadBucket", bucket: "b" });
  assert.equal(net.message, 'HeadBucket failed for "b": NetworkError (ECONNREFUSED)');
});

Deno.test("toS3Error() drops characters outside identifiers from server-supplied codes", () => {
  const mapped = toS3Error(serviceError(`Weird <Code> ${SECRET}`, 400), ctx);
  assert.equal(mapped.code, "Other");
  assert.ok(!mapped.message.includes("<"));
  assert.ok(!mapped.message.includes(SECRET));
});

Deno.test("toS3Error() reports Aborted when the caller's signal fired, whatever the transport said", () => {
  const ac = new AbortController();
  ac.abort();
  const mapped = toS3Error(new Error("socket hang up"), { ...ctx, signal: ac.signal });
  assert.equal(mapped.code, "Aborted");
});

Deno.test("toS3Error() returns S3Errors unchanged", () => {
  const first = toS3Error(serviceError("NoSuchKey", 404), ctx);
  assert.equal(toS3Error(first, { operation: "Other" }), first);
});

Deno.test("S3Error.transient is true only for retryable mapped codes", () => {
  assert.equal(toS3Error(serviceError("SlowDown", 503), ctx).transient, true);
  assert.equal(toS3Error(nodeError("ECONNRESET"), ctx).transient, true);
  assert.equal(toS3Error(serviceError("NoSuchKey", 404), ctx).transient, false);
});

Deno.test("parseContentRangeTotal() reads the total size and ignores unknown totals", () => {
  assert.equal(parseContentRangeTotal("bytes 0-99/1234"), 1234);
  assert.equal(parseContentRangeTotal("bytes 5-5/6"), 6);
  assert.equal(parseContentRangeTotal("bytes 0-99/*"), undefined);
  assert.equal(parseContentRangeTotal(undefined), undefined);
});

Deno.test("decodeUrlEncodedKey() decodes percent escapes and form-style spaces", () => {
  assert.equal(decodeUrlEncodedKey("a%20b%2Bc/d"), "a b+c/d");
  assert.equal(decodeUrlEncodedKey("a+b"), "a b");
  assert.equal(decodeUrlEncodedKey("%C3%BC%01"), "ü\x01");
});
