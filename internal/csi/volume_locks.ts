/**
 * Per-volume serialisation with single-flight, and a queue for what
 * several volumes' calls share.
 *
 * Every CSI call may be retried, concurrently. Calls on one volume key run
 * one at a time; an identical call (same fingerprint) arriving while one is
 * in flight joins it and gets the same result, while a different call on the
 * same key is refused with ABORTED ("operation pending for volume"), which
 * the sidecars retry with backoff.
 *
 * `SerialQueue` is for work that distinct keys share (the node's source
 * mount, which every target of a volume binds): calls on one of its keys
 * wait their turn instead of being refused, because they are not retries
 * of each other but separate, legitimate calls.
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
   * fingerprints share one execution. `what` names the key in the refusal.
   */
  run<T>(
    key: string,
    operation: string,
    fingerprint: string,
    fn: () => Promise<T>,
    what = `volume "${key}"`,
  ): Promise<T> {
    const current = this.#inFlight.get(key);
    if (current) {
      if (current.fingerprint === fingerprint) return current.promise as Promise<T>;
      return Promise.reject(
        new AbortedError(
          `Cannot ${operation} ${what}: an operation (${current.operation}) is already in progress for it`,
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

/** Runs the calls on one key one after another, in arrival order; distinct keys run at once. */
export class SerialQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const mine = before.catch(() => {}).then(fn);
    const tail = mine.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return mine;
  }

  get size(): number {
    return this.#tails.size;
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
