/**
 * Domain errors shared by every role.
 *
 * Every domain error has a `kind`, and each audience translates kinds in one
 * table: the CSI layer to gRPC status codes (`internal/csi/grpc_status.ts`),
 * the file system to errno values (`internal/fs/errno.ts`, where a few S3
 * codes and operations refine the kind, e.g. a missing key on a read is
 * ESTALE). S3 failures are `S3Error`s (`internal/s3/object_client.ts`), whose
 * kind comes from their code in the one table next to the codes. A handler
 * that wants to say what it was doing wraps with `withContext`, which keeps
 * the cause's kind.
 *
 * Process exit codes are decided once, in `main.ts`: a `StartupError` (a role
 * could not start) and an `UnimplementedError` escaping a role each have
 * their own code there.
 *
 * Messages follow one style: sentence case, no trailing period, the failed
 * action first, details after a colon, values quoted. Messages are shown to
 * users (CSI status messages, mount errors), so they must never contain a
 * secret.
 *
 * @module
 */

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

/** Base class: every domain error has a stable `kind` callers can switch on. */
export abstract class S3csiError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The base class of one kind, so each class below states its kind once. */
function ofKind<K extends ErrorKind>(kind: K) {
  return class extends S3csiError {
    readonly kind: K = kind;
  };
}

/** Bad input from the caller. `field` names the request field, parameter or option at fault. */
export class InvalidArgumentError extends ofKind("invalid_argument") {
  constructor(readonly field: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export class NotFoundError extends ofKind("not_found") {}

/** The named thing exists with attributes incompatible with the request. */
export class AlreadyExistsError extends ofKind("already_exists") {}

/** Another operation on the same volume is in progress: the caller should retry. */
export class AbortedError extends ofKind("aborted") {}

export class FailedPreconditionError extends ofKind("failed_precondition") {}

/** A transient failure of a dependency (network, 5xx, throttling): retry later. */
export class UnavailableError extends ofKind("unavailable") {}

export class PermissionDeniedError extends ofKind("permission_denied") {}

/** Not built yet. Escaping a role, it is its own exit code (see `main.ts`). */
export class UnimplementedError extends ofKind("unimplemented") {}

export class InternalError extends ofKind("internal") {}

/** A domain error with what was being done put in front; the kind is the cause's. */
class ContextError extends S3csiError {
  constructor(readonly kind: ErrorKind, message: string, options: ErrorOptions) {
    super(message, options);
  }
}

/**
 * `cause` in context: "`action`: `cause.message`", with the cause's kind, so
 * the wrapped error maps to the same gRPC status and errno.
 */
export function withContext(action: string, cause: S3csiError): S3csiError {
  return new ContextError(cause.kind, `${action}: ${cause.message}`, { cause });
}

/**
 * A role could not start (bad mount point, bucket unreachable, ...): `main.ts`
 * prints the message as one line and exits 1. Not a domain error: it ends a
 * process, it is never an RPC's or a file operation's answer.
 */
export class StartupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StartupError";
  }
}

/** A message for any thrown value, for logs and wrapped errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
