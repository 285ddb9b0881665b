/**
 * The unit of a reader's stream: one byte range of the object, its state
 * (planned, in flight, ready, failed), its data and the budget memory it
 * holds. Internal to the prefetch reader (`reader.ts`), which owns every
 * state change; kept apart so the reader's file holds only its policy.
 *
 * @module
 */

import { S3Error } from "../../s3/object_client.ts";

export const EMPTY = new Uint8Array(0);

export const PLANNED = 0;
export const IN_FLIGHT = 1;
export const READY = 2;
export const FAILED = 3;

/** A byte range of the object and its data. */
export class Part {
  // A plain number: the state changes across awaits, where narrowing would mislead the compiler.
  state: number = PLANNED;
  data: Uint8Array = EMPTY;
  error: unknown = undefined;
  /** Settles (never rejects) when the GET ends or is aborted. */
  done: Promise<void> | undefined = undefined;
  settle: (() => void) | undefined = undefined;
  controller: AbortController | undefined = undefined;
  /** Bytes reserved in the budget for this part, released exactly once. */
  reserved = 0;
  /** Reads currently awaiting this part: it is not cancelled while any remain. */
  waiters = 0;
  /** No longer in the stream: release its memory as soon as it settles. */
  dropped = false;
  /** Reserved over the budget for a waiting read: not kept for backward seeks. */
  forced = false;
  constructor(readonly start: number, readonly end: number) {}
}

/** Waits for `p` to settle, or rejects when the caller's `signal` fires first. */
export function waitFor(p: Part, signal: AbortSignal | undefined, key: string): Promise<void> {
  if (signal === undefined) return p.done!;
  if (signal.aborted) return Promise.reject(abortedError(key));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortedError(key));
    signal.addEventListener("abort", onAbort, { once: true });
    p.done!.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

export function abortedError(key: string): S3Error {
  return new S3Error("Aborted", `Read of "${key}" was cancelled`);
}

export function closedError(key: string): S3Error {
  return new S3Error("Aborted", `Read of "${key}" failed: the file handle is closed`);
}
