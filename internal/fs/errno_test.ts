import assert from "node:assert/strict";
import { Errno, FsError } from "./api.ts";
import { errnoOf, toFsError } from "./errno.ts";
import { S3Error } from "../s3/object_client.ts";
import { NotFoundError, PermissionDeniedError, UnavailableError } from "../errors/mod.ts";

Deno.test("errnoOf() maps S3 codes, with PreconditionFailed and NoSuchKey depending on the operation", () => {
  assert.equal(errnoOf(new S3Error("NoSuchKey", "x")), Errno.ENOENT);
  assert.equal(errnoOf(new S3Error("NoSuchKey", "x"), "read"), Errno.ESTALE);
  assert.equal(errnoOf(new S3Error("PreconditionFailed", "x"), "read"), Errno.ESTALE);
  assert.equal(errnoOf(new S3Error("PreconditionFailed", "x"), "upload"), Errno.EEXIST);
  assert.equal(errnoOf(new S3Error("AccessDenied", "x")), Errno.EACCES);
  assert.equal(errnoOf(new S3Error("NoSuchBucket", "x")), Errno.EIO);
  assert.equal(errnoOf(new S3Error("NetworkError", "x")), Errno.EIO);
  assert.equal(errnoOf(new S3Error("Throttled", "x")), Errno.EIO);
  assert.equal(errnoOf(new S3Error("Aborted", "x")), Errno.EINTR);
});

Deno.test("errnoOf() maps domain errors, aborts and unknown values", () => {
  assert.equal(errnoOf(new NotFoundError("x")), Errno.ENOENT);
  assert.equal(errnoOf(new PermissionDeniedError("x")), Errno.EACCES);
  assert.equal(errnoOf(new UnavailableError("x")), Errno.EIO);
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
