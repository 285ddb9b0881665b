import assert from "node:assert/strict";
import { status as Status } from "@grpc/grpc-js";
import { toGrpcError } from "./grpc_status.ts";
import { S3Error, type S3ErrorCode } from "../s3/object_client.ts";
import {
  AbortedError,
  InvalidArgumentError,
  NotFoundError,
  UnimplementedError,
  withContext,
} from "../errors/mod.ts";

Deno.test("toGrpcError() gives every S3 code the status of its kind", () => {
  const codesByStatus: [Status, S3ErrorCode[]][] = [
    [Status.NOT_FOUND, ["NoSuchKey", "NoSuchBucket", "NoSuchUpload"]],
    [Status.FAILED_PRECONDITION, ["PreconditionFailed", "BucketNotEmpty"]],
    [Status.ALREADY_EXISTS, ["BucketAlreadyOwnedByYou", "BucketAlreadyExists"]],
    [Status.INVALID_ARGUMENT, ["InvalidBucketName"]],
    [Status.PERMISSION_DENIED, ["AccessDenied"]],
    [Status.UNAVAILABLE, ["Throttled", "ServerError", "NetworkError"]],
    [Status.ABORTED, ["Aborted"]],
    [Status.INTERNAL, ["InvalidRange", "EntityTooSmall", "InvalidPart", "Other"]],
  ];
  const seen = new Set<string>();
  for (const [status, codes] of codesByStatus) {
    for (const code of codes) {
      seen.add(code);
      const err = new S3Error(code, `HeadBucket failed: ${code}`);
      assert.deepEqual(toGrpcError(err), { code: status, details: `HeadBucket failed: ${code}` });
    }
  }
  assert.equal(seen.size, 17, "every S3 code is listed once");
});

Deno.test("toGrpcError() maps domain errors by kind and anything else to INTERNAL", () => {
  assert.equal(
    toGrpcError(new InvalidArgumentError("name", "Missing name")).code,
    Status.INVALID_ARGUMENT,
  );
  assert.equal(toGrpcError(new NotFoundError("x")).code, Status.NOT_FOUND);
  assert.equal(toGrpcError(new AbortedError("x")).code, Status.ABORTED);
  assert.equal(toGrpcError(new UnimplementedError("x")).code, Status.UNIMPLEMENTED);
  assert.deepEqual(toGrpcError(new Error("boom")), {
    code: Status.INTERNAL,
    details: "Internal error: boom",
  });
  assert.equal(toGrpcError("boom").details, "Internal error: boom");
});

Deno.test("withContext() puts the action in front and keeps the cause's status", () => {
  const cause = new S3Error("NetworkError", "DeleteBucket failed: NetworkError (ECONNREFUSED)");
  const err = withContext('Cannot delete bucket "b"', cause);
  assert.deepEqual(toGrpcError(err), {
    code: Status.UNAVAILABLE,
    details: 'Cannot delete bucket "b": DeleteBucket failed: NetworkError (ECONNREFUSED)',
  });
  assert.equal(err.cause, cause);
  assert.equal(
    toGrpcError(withContext("Cannot x", new S3Error("Other", "y"))).code,
    Status.INTERNAL,
  );
});
