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
 * Errnos follow the error's kind (an `S3Error`'s kind comes from its code).
 * A few S3 codes mean something more precise to a file system than their
 * kind says, or depend on the operation: those are the overrides in
 * `s3Errno`, each with its reason.
 *
 * @module
 */

import { Errno, FsError } from "./api.ts";
import { type ErrorKind, errorMessage, S3csiError } from "../errors/mod.ts";
import { S3Error } from "../s3/object_client.ts";
import { log } from "../log/mod.ts";

/** What the file system was doing when the error happened. */
export type FsOp = "lookup" | "read" | "write" | "upload" | "list" | "delete" | "other";

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

/** The errno of an S3 failure where its kind alone would say the wrong thing. */
function s3Errno(err: S3Error, op: FsOp): number | undefined {
  switch (err.code) {
    case "NoSuchKey":
      // A read pinned to an ETag whose object was deleted is just as stale
      // as one whose object was overwritten.
      return op === "read" ? Errno.ESTALE : undefined;
    // NoSuchBucket: the mounted bucket vanished, so every file is unreachable,
    // not absent. NoSuchUpload: the upload a write started is gone (aborted
    // by someone else): the write failed, no file is missing.
    case "NoSuchBucket":
    case "NoSuchUpload":
      return Errno.EIO;
    case "PreconditionFailed":
      // On a read the object changed under an open handle; on an upload
      // with If-None-Match someone else created the key first.
      return op === "upload" ? Errno.EEXIST : Errno.ESTALE;
    case "Aborted":
      // The kernel interrupted the request (not "busy, retry": EAGAIN).
      return Errno.EINTR;
    default:
      return undefined;
  }
}

/** The errno for any thrown value (without logging). */
export function errnoOf(err: unknown, op: FsOp = "other"): number {
  if (err instanceof FsError) return err.errno;
  if (err instanceof S3Error) return s3Errno(err, op) ?? KIND_ERRNO[err.kind];
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
  return new FsError(errno, `${op} failed: ${errorMessage(err)}`, { cause: err });
}
