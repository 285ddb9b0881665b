/**
 * The global memory budget for prefetched data.
 *
 * One `MemoryBudget` is shared by every reader of a mount. A reader reserves
 * the bytes of a ranged GET before issuing it and releases them when the data
 * has been consumed, dropped, or the reader is closed. Speculative prefetch
 * uses `tryReserve()` and backs off when it fails; the bytes a caller needs
 * right now use `forceReserve()`, which always succeeds (possibly going over
 * the limit) so that reads make progress and nothing can deadlock on memory.
 *
 * The budget also counts the readers sharing it, so each reader can cap its
 * window at a fair share instead of one sequential reader starving the rest.
 *
 * @module
 */

/** Counters for tests, benchmarks and metrics. */
export interface MemoryBudgetStats {
  maxBytes: number;
  reserved: number;
  peak: number;
  readers: number;
  /** Reservations refused by `tryReserve()`. */
  refusals: number;
  /** Bytes reserved by `forceReserve()` while over the limit. */
  forcedOverLimitBytes: number;
}

export class MemoryBudget {
  readonly maxBytes: number;
  #reserved = 0;
  #peak = 0;
  #readers = 0;
  #refusals = 0;
  #forcedOverLimit = 0;

  constructor(maxBytes: number) {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`Cannot create memory budget: invalid size "${maxBytes}"`);
    }
    this.maxBytes = Math.floor(maxBytes);
  }

  /** Bytes currently reserved. */
  get reserved(): number {
    return this.#reserved;
  }

  /** The highest value `reserved` has reached. */
  get peak(): number {
    return this.#peak;
  }

  /** Bytes that can still be reserved without going over the limit. */
  get available(): number {
    return Math.max(0, this.maxBytes - this.#reserved);
  }

  /** Readers currently registered (open file handles reading through the budget). */
  get readers(): number {
    return this.#readers;
  }

  /** The share of the budget one reader should aim for. */
  get fairShare(): number {
    return Math.floor(this.maxBytes / Math.max(1, this.#readers));
  }

  /** Reserves `bytes` if that keeps the total within the limit; returns whether it did. */
  tryReserve(bytes: number): boolean {
    if (this.#reserved + bytes > this.maxBytes) {
      this.#refusals++;
      return false;
    }
    this.#add(bytes);
    return true;
  }

  /** Reserves `bytes` unconditionally: for data a reader is waiting on right now. */
  forceReserve(bytes: number): void {
    const over = this.#reserved + bytes - this.maxBytes;
    if (over > 0) this.#forcedOverLimit += Math.min(over, bytes);
    this.#add(bytes);
  }

  release(bytes: number): void {
    this.#reserved -= bytes;
    if (this.#reserved < 0) {
      // A double release is a bug in a reader; clamp so the budget stays usable.
      this.#reserved = 0;
      throw new Error(`Cannot release memory: "${bytes}" bytes were not reserved`);
    }
  }

  /** Registers a reader for fair-share computation; returns the function that unregisters it. */
  registerReader(): () => void {
    this.#readers++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#readers--;
    };
  }

  /** Restarts peak tracking from the current reservation (for benchmarks). */
  resetPeak(): void {
    this.#peak = this.#reserved;
  }

  stats(): MemoryBudgetStats {
    return {
      maxBytes: this.maxBytes,
      reserved: this.#reserved,
      peak: this.#peak,
      readers: this.#readers,
      refusals: this.#refusals,
      forcedOverLimitBytes: this.#forcedOverLimit,
    };
  }

  #add(bytes: number): void {
    this.#reserved += bytes;
    if (this.#reserved > this.#peak) this.#peak = this.#reserved;
  }
}
