import assert from "node:assert/strict";
import { Errno, FsError } from "./api.ts";
import { errnoOf, toFsError } from "./errno.ts";
import { S3Error, type S3ErrorCode } from "../s3/object_client.ts";
import {
  AbortedError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnavailableError,
  withContext,
} from "../errors/mod.ts";

Deno.test("errnoOf() gives every S3 code its errno (SEMANTICS.md lists those a mount meets)", () => {
  const expected: Record<S3ErrorCode, number> = {
    NoSuchKey: Errno.ENOENT,
    NoSuchBucket: Errno.EIO,
    NoSuchUpload: Errno.EIO,
    PreconditionFailed: Errno.ESTALE,
    InvalidRange: Errno.EIO,
    // Bucket management: the file system never asks for it, so the kind decides.
    BucketNotEmpty: Errno.EIO,
    BucketAlreadyOwnedByYou: Errno.EEXIST,
    BucketAlreadyExists: Errno.EEXIST,
    InvalidBucketName: Errno.EINVAL,
    AccessDenied: Errno.EACCES,
    EntityTooSmall: Errno.EIO,
    InvalidPart: Errno.EIO,
    Throttled: Errno.EIO,
    ServerError: Errno.EIO,
    NetworkError: Errno.EIO,
    Aborted: Errno.EINTR,
    Other: Errno.EIO,
  };
  for (const [code, errno] of Object.entries(expected)) {
    assert.equal(errnoOf(new S3Error(code as S3ErrorCode, "x")), errno, code);
  }
});

Deno.test("errnoOf() lets the operation decide for PreconditionFailed and NoSuchKey", () => {
  assert.equal(errnoOf(new S3Error("NoSuchKey", "x"), "lookup"), Errno.ENOENT);
  assert.equal(errnoOf(new S3Error("NoSuchKey", "x"), "read"), Errno.ESTALE);
  assert.equal(errnoOf(new S3Error("PreconditionFailed", "x"), "read"), Errno.ESTALE);
  assert.equal(errnoOf(new S3Error("PreconditionFailed", "x"), "upload"), Errno.EEXIST);
  assert.equal(errnoOf(new S3Error("NoSuchBucket", "x"), "read"), Errno.EIO);
  assert.equal(errnoOf(new S3Error("Aborted", "x"), "upload"), Errno.EINTR);
});

Deno.test("errnoOf() maps domain errors, aborts and unknown values", () => {
  assert.equal(errnoOf(new NotFoundError("x")), Errno.ENOENT);
  assert.equal(errnoOf(new PermissionDeniedError("x")), Errno.EACCES);
  assert.equal(errnoOf(new UnavailableError("x")), Errno.EIO);
  assert.equal(errnoOf(new AbortedError("x")), Errno.EAGAIN);
  assert.equal(errnoOf(new InvalidArgumentError("f", "x")), Errno.EINVAL);
  assert.equal(errnoOf(withContext("Cannot y", new PermissionDeniedError("x"))), Errno.EACCES);
  assert.equal(errnoOf(new DOMException("x", "AbortError")), Errno.EINTR);
  assert.equal(errnoOf(new Error("x")), Errno.EIO);
  assert.equal(errnoOf(new FsError(Errno.EPERM, "x")), Errno.EPERM);
});

Deno.test("toFsError() passes FsError through and wraps the rest with its cause", () => {
  const own = new FsError(Errno.EXDEV, "x");
  assert.equal(toFsError(own, "other", {}), own);
  const cause = new S3Error("AccessDenied", "denied");
  const wrapped = toFsError(cause, "lookup", { name: "n" });
  assert.equal(wrapped.errno, Errno.EACCES);
  assert.equal(wrapped.cause, cause);
});
