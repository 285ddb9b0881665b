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
 * When a reservation is refused, readers that have not read for a while
 * (`idleMs`) are asked to give back their prefetched data, so handles left
 * open and unused do not hold memory others need (at most one such sweep per
 * `reclaimIntervalMs`).
 *
 * Memory kept for reuse (the buffer pool, `setSpare`) counts against the
 * budget too, so the budget bounds every part buffer the mount holds; it is
 * let go first, before a reservation is refused or goes over the limit.
 *
 * @module
 */

/** A reader that can give back prefetched memory when it has been idle. */
export interface Reclaimable {
  /** Drops prefetched data if the last read was at or before `cutoff` (a `performance.now()` time). */
  reclaimIdle(cutoff: number): void;
}

export interface MemoryBudgetOptions {
  /** How long a reader must go without reading before its memory may be reclaimed; 2 s by default. */
  idleMs?: number;
  /** Minimum time between two reclaim sweeps; 100 ms by default. */
  reclaimIntervalMs?: number;
}

/** Memory held for reuse inside the budget that can be let go at once. */
export interface Spare {
  /** Lets go of at least `bytes` if it holds that much (releasing them from the budget). */
  shed(bytes: number): void;
}

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
  /** Sweeps that asked idle readers for memory. */
  reclaimSweeps: number;
}

export class MemoryBudget {
  readonly maxBytes: number;
  #reserved = 0;
  #peak = 0;
  #readers = 0;
  #refusals = 0;
  #forcedOverLimit = 0;
  readonly #members = new Set<Reclaimable>();
  readonly #idleMs: number;
  readonly #reclaimIntervalMs: number;
  #lastSweep = -Infinity;
  #sweeps = 0;
  #spare: Spare | undefined;

  constructor(maxBytes: number, opts: MemoryBudgetOptions = {}) {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`Cannot create memory budget: invalid size "${maxBytes}"`);
    }
    this.maxBytes = Math.floor(maxBytes);
    this.#idleMs = opts.idleMs ?? 2000;
    this.#reclaimIntervalMs = opts.reclaimIntervalMs ?? 100;
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

  /**
   * Reserves `bytes` if that keeps the total within the limit; returns whether
   * it did. When it does not fit, idle readers other than `requester` are
   * asked to give memory back first.
   */
  tryReserve(bytes: number, requester?: Reclaimable): boolean {
    this.#shedFor(bytes);
    if (this.#reserved + bytes > this.maxBytes && !this.#reclaim(bytes, requester)) {
      this.#refusals++;
      return false;
    }
    this.#add(bytes);
    return true;
  }

  /** Reserves `bytes` unconditionally: for data a reader is waiting on right now. */
  forceReserve(bytes: number): void {
    this.#shedFor(bytes);
    const over = this.#reserved + bytes - this.maxBytes;
    if (over > 0) this.#forcedOverLimit += Math.min(over, bytes);
    this.#add(bytes);
  }

  /** The memory kept for reuse that counts against this budget (one at most). */
  setSpare(spare: Spare): void {
    this.#spare = spare;
  }

  /** Reserves `bytes` for spare memory only if they fit: spare memory never sheds or goes over. */
  reserveIfFits(bytes: number): boolean {
    if (this.#reserved + bytes > this.maxBytes) return false;
    this.#add(bytes);
    return true;
  }

  release(bytes: number): void {
    this.#reserved -= bytes;
    if (this.#reserved < 0) {
      // A double release is a bug in a reader; clamp so the budget stays usable.
      this.#reserved = 0;
      throw new Error(`Cannot release memory: "${bytes}" bytes were not reserved`);
    }
  }

  /**
   * Registers a reader for fair-share computation and, when `member` is given,
   * for idle reclaim; returns the function that unregisters it.
   */
  registerReader(member?: Reclaimable): () => void {
    this.#readers++;
    if (member) this.#members.add(member);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#readers--;
      if (member) this.#members.delete(member);
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
      reclaimSweeps: this.#sweeps,
    };
  }

  /** Asks idle members for memory; returns whether `bytes` fit afterwards. */
  #reclaim(bytes: number, requester: Reclaimable | undefined): boolean {
    if (this.#members.size === 0) return false;
    const now = performance.now();
    if (now - this.#lastSweep < this.#reclaimIntervalMs) return false;
    this.#lastSweep = now;
    this.#sweeps++;
    const cutoff = now - this.#idleMs;
    // A member may unregister itself while giving memory back: iterate a copy.
    for (const m of [...this.#members]) {
      if (m !== requester) m.reclaimIdle(cutoff);
    }
    return this.#reserved + bytes <= this.maxBytes;
  }

  #shedFor(bytes: number): void {
    const over = this.#reserved + bytes - this.maxBytes;
    if (over > 0) this.#spare?.shed(over);
  }

  #add(bytes: number): void {
    this.#reserved += bytes;
    if (this.#reserved > this.#peak) this.#peak = this.#reserved;
  }
}
