/**
 * The one mapping from domain errors to gRPC status codes.
 *
 * Handlers throw `internal/errors` types (an `S3Error` is one too, its kind
 * set by its S3 code); this module turns each kind into the CSI spec's code
 * with a user-facing message and no status details (the spec requires
 * `details` to be empty). Anything else thrown becomes INTERNAL.
 *
 * @module
 */
import { status as Status } from "@grpc/grpc-js";
import { type ErrorKind, errorMessage, S3csiError } from "../errors/mod.ts";

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

export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof S3csiError) return { code: KIND_TO_STATUS[err.kind], details: err.message };
  return { code: Status.INTERNAL, details: `Internal error: ${errorMessage(err)}` };
}
