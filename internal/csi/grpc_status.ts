/**
 * The one mapping from domain errors to gRPC status codes.
 *
 * Handlers throw `internal/errors` types (or let an `S3Error` escape); this
 * module turns them into the CSI spec's codes with a user-facing message and
 * no status details (the spec requires `details` to be empty). Unknown errors
 * become INTERNAL.
 *
 * @module
 */
import { status as Status } from "@grpc/grpc-js";
import { type ErrorKind, S3csiError } from "../errors/mod.ts";
import { S3Error } from "../s3/object_client.ts";

export interface GrpcError {
  code: Status;
  details: string;
}

const KIND_TO_STATUS: Record<ErrorKind, Status> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  not_found: Status.NOT_FOUND,
  already_exists: Status.ALREADY_EXISTS,
  aborted: Status.ABORTED,
  failed_precondition: Status.FAILED_PRECONDITION,
  unavailable: Status.UNAVAILABLE,
  permission_denied: Status.PERMISSION_DENIED,
  unimplemented: Status.UNIMPLEMENTED,
  internal: Status.INTERNAL,
};

/** S3 failures that escape a handler unwrapped; handlers should translate where context matters. */
function s3ErrorStatus(err: S3Error): Status {
  switch (err.code) {
    case "AccessDenied":
      return Status.PERMISSION_DENIED;
    case "NoSuchBucket":
    case "NoSuchKey":
    case "NoSuchUpload":
      return Status.NOT_FOUND;
    case "InvalidBucketName":
      return Status.INVALID_ARGUMENT;
    case "BucketAlreadyExists":
    case "BucketAlreadyOwnedByYou":
      return Status.ALREADY_EXISTS;
    case "BucketNotEmpty":
    case "PreconditionFailed":
      return Status.FAILED_PRECONDITION;
    case "Throttled":
    case "ServerError":
    case "NetworkError":
      return Status.UNAVAILABLE;
    case "Aborted":
      return Status.ABORTED;
    default:
      return Status.INTERNAL;
  }
}

export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof S3csiError) return { code: KIND_TO_STATUS[err.kind], details: err.message };
  if (err instanceof S3Error) return { code: s3ErrorStatus(err), details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: Status.INTERNAL, details: `Internal error: ${message}` };
}
