/**
 * A keyed work queue: a key added many times before it is processed is
 * processed once; a key is never processed by two workers at once (one
 * added while it runs is processed again after); a key that failed is
 * retried with exponential backoff per key, reset by `forget` after a
 * success. Keys, not events, are queued: the handler reads the current
 * state, which is what makes the reconciler level-triggered.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #running = new Set<string>();
  /** Added while running: queued again when its run ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, () => void>();
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(readonly clock: Clock, readonly backoff: Backoff) {}

  add(key: string): void {
    if (this.#closed) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.#waiters.shift()?.();
  }

  /** Adds `key` after `ms`; a key already waiting on a timer keeps that one. */
  addAfter(key: string, ms: number): void {
    if (this.#closed || this.#timers.has(key)) return;
    const cancel = this.clock.setTimer(ms, () => {
      this.#timers.delete(key);
      this.add(key);
    });
    this.#timers.set(key, cancel);
  }

  /** Adds `key` after its next backoff delay; returns the delay. */
  retry(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    const ms = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** n);
    this.addAfter(key, ms);
    return ms;
  }

  /** Resets the backoff of `key` (it succeeded). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  get length(): number {
    return this.#queue.length;
  }

  /** Runs `handle` on keys with `workers` in parallel until `close`. */
  async run(handle: (key: string) => Promise<void>, workers = 1): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.#next();
        if (key === undefined) return;
        this.#running.add(key);
        try {
          await handle(key);
        } finally {
          this.#running.delete(key);
          if (this.#dirty.delete(key)) this.add(key);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
  }

  async #next(): Promise<string | undefined> {
    while (this.#queue.length === 0 && !this.#closed) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    if (this.#closed) return undefined;
    const key = this.#queue.shift()!;
    this.#queued.delete(key);
    return key;
  }

  /** Stops the workers after their current key; pending keys and timers are dropped. */
  close(): void {
    this.#closed = true;
    for (const cancel of this.#timers.values()) cancel();
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w();
  }
}
