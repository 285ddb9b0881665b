/**
 * Domain errors shared by every role.
 *
 * Handlers throw these; exactly two places translate them: the CSI layer maps
 * them to gRPC status codes (`internal/csi/grpc_status.ts`) and the file
 * system maps them to errno values (`internal/fs/errno.ts`). Messages follow
 * one style: sentence case, no trailing period, the failed action first,
 * details after a colon, values quoted. Messages are shown to users (CSI
 * status messages, mount errors), so they must never contain a secret.
 *
 * @module
 */

/** Base class: every domain error has a stable `kind` callers can switch on. */
export abstract class S3csiError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "aborted"
  | "failed_precondition"
  | "unavailable"
  | "permission_denied"
  | "unimplemented"
  | "internal";

/** Bad input from the caller. `field` names the request field, parameter or option at fault. */
export class InvalidArgumentError extends S3csiError {
  readonly kind = "invalid_argument" as const;
  constructor(readonly field: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export class NotFoundError extends S3csiError {
  readonly kind = "not_found" as const;
}

/** The named thing exists with attributes incompatible with the request. */
export class AlreadyExistsError extends S3csiError {
  readonly kind = "already_exists" as const;
}

/** Another operation on the same volume is in progress: the caller should retry. */
export class AbortedError extends S3csiError {
  readonly kind = "aborted" as const;
}

export class FailedPreconditionError extends S3csiError {
  readonly kind = "failed_precondition" as const;
}

/** A transient failure of a dependency (network, 5xx, throttling): retry later. */
export class UnavailableError extends S3csiError {
  readonly kind = "unavailable" as const;
}

export class PermissionDeniedError extends S3csiError {
  readonly kind = "permission_denied" as const;
}

export class UnimplementedError extends S3csiError {
  readonly kind = "unimplemented" as const;
}

export class InternalError extends S3csiError {
  readonly kind = "internal" as const;
}

/** A message for any thrown value, for logs and wrapped errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
