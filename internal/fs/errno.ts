/**
 * The one mapping from domain errors to errno values.
 *
 * The file system core throws `FsError` for semantic refusals (EPERM for a
 * disabled delete, EINVAL for an out-of-order write, ...); everything else
 * that escapes an S3 call or a helper is translated here, so the errno a user
 * sees for a given failure is decided in exactly one place (and documented
 * in SEMANTICS.md). The cause is logged once, at the point of translation,
 * together with the errno it became.
 *
 * Only `PreconditionFailed` depends on the operation: on a read it means the
 * object changed under an open handle (ESTALE), on an upload with
 * If-None-Match it means someone else created the key first (EEXIST).
 *
 * @module
 */

import { Errno, FsError } from "./api.ts";
import { type ErrorKind, S3csiError } from "../errors/mod.ts";
import { S3Error, type S3ErrorCode } from "../s3/object_client.ts";
import { log } from "../log/mod.ts";

/** What the file system was doing when the error happened. */
export type FsOp = "lookup" | "read" | "write" | "upload" | "list" | "delete" | "other";

const S3_ERRNO: Record<S3ErrorCode, number> = {
  NoSuchKey: Errno.ENOENT,
  // The mounted bucket vanished: every file is unreachable, not absent.
  NoSuchBucket: Errno.EIO,
  NoSuchUpload: Errno.EIO,
  PreconditionFailed: Errno.ESTALE,
  InvalidRange: Errno.EIO,
  BucketNotEmpty: Errno.EIO,
  BucketAlreadyOwnedByYou: Errno.EIO,
  BucketAlreadyExists: Errno.EIO,
  InvalidBucketName: Errno.EIO,
  AccessDenied: Errno.EACCES,
  EntityTooSmall: Errno.EIO,
  InvalidPart: Errno.EIO,
  Throttled: Errno.EIO,
  ServerError: Errno.EIO,
  NetworkError: Errno.EIO,
  Aborted: Errno.EINTR,
  Other: Errno.EIO,
};

const KIND_ERRNO: Record<ErrorKind, number> = {
  invalid_argument: Errno.EINVAL,
  not_found: Errno.ENOENT,
  already_exists: Errno.EEXIST,
  aborted: Errno.EAGAIN,
  failed_precondition: Errno.EIO,
  unavailable: Errno.EIO,
  permission_denied: Errno.EACCES,
  unimplemented: Errno.ENOSYS,
  internal: Errno.EIO,
};

/** The errno for any thrown value (without logging). */
export function errnoOf(err: unknown, op: FsOp = "other"): number {
  if (err instanceof FsError) return err.errno;
  if (err instanceof S3Error) {
    if (err.code === "PreconditionFailed" && op === "upload") return Errno.EEXIST;
    // A read pinned to an ETag whose object was deleted is just as stale
    // as one whose object was overwritten.
    if (err.code === "NoSuchKey" && op === "read") return Errno.ESTALE;
    return S3_ERRNO[err.code];
  }
  if (err instanceof S3csiError) return KIND_ERRNO[err.kind];
  if (err instanceof DOMException && err.name === "AbortError") return Errno.EINTR;
  return Errno.EIO;
}

/**
 * Converts any thrown value into an `FsError`, logging the cause once.
 * `FsError`s pass through untouched (they were decided deliberately).
 */
export function toFsError(err: unknown, op: FsOp, context: Record<string, unknown>): FsError {
  if (err instanceof FsError) return err;
  const errno = errnoOf(err, op);
  const level = errno === Errno.EINTR || errno === Errno.ENOENT ? "debug" : "warn";
  log.with({ component: "fs" })[level]("File system operation failed", {
    op,
    errno,
    ...context,
    error: err,
  });
  const message = err instanceof Error ? err.message : String(err);
  return new FsError(errno, `${op} failed: ${message}`, { cause: err });
}
