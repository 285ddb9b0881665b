/**
 * Per-volume serialisation with single-flight.
 *
 * Every CSI call may be retried, concurrently. Calls on one volume key run
 * one at a time; an identical call (same fingerprint) arriving while one is
 * in flight joins it and gets the same result, while a different call on the
 * same key is refused with ABORTED ("operation pending for volume"), which
 * the sidecars retry with backoff.
 *
 * @module
 */
import { AbortedError } from "../errors/mod.ts";

interface InFlight {
  fingerprint: string;
  operation: string;
  promise: Promise<unknown>;
}

export class VolumeLocks {
  readonly #inFlight = new Map<string, InFlight>();

  /**
   * Runs `fn` under `key`. `fingerprint` identifies the request: equal
   * fingerprints share one execution.
   */
  run<T>(key: string, operation: string, fingerprint: string, fn: () => Promise<T>): Promise<T> {
    const current = this.#inFlight.get(key);
    if (current) {
      if (current.fingerprint === fingerprint) return current.promise as Promise<T>;
      return Promise.reject(
        new AbortedError(
          `Cannot ${operation} volume "${key}": an operation (${current.operation}) is already in progress for it`,
        ),
      );
    }
    const promise = (async () => {
      try {
        return await fn();
      } finally {
        this.#inFlight.delete(key);
      }
    })();
    this.#inFlight.set(key, { fingerprint, operation, promise });
    return promise;
  }

  get size(): number {
    return this.#inFlight.size;
  }
}

/** A stable fingerprint of a request object (sorted keys), for single-flight. */
export function fingerprint(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    return v;
  });
}
