/**
 * The memory of the files open for writing: one budget shared by every
 * upload of a mount, and the back-pressure that keeps them inside it.
 *
 * An upload reserves the memory of its part buffer before it allocates it,
 * a small first buffer or else a whole part, and releases it once the part
 * is uploaded (or the upload is over). A reservation that does not fit waits, first come first served,
 * for other writers to release: a `write()` that waits is the back-pressure
 * a busy mount gives instead of refusing files or running out of memory.
 * So any number of files may be open for writing; only their buffers are
 * bounded.
 *
 * Three rules keep waiting from turning into a deadlock:
 * - a writer holding memory holds a whole part, so it needs no more to
 *   fill and send it, and sending it releases memory (the upload's rule);
 * - a small first buffer (`freeBytes`) is always granted, even over the
 *   limit, so that many small files never wait on each other, and a
 *   reservation is granted whenever nothing is reserved at all;
 * - a wait fails with ENOMEM once no memory at all was released for
 *   `stuckMs`: every holder is then waiting too (a program that writes
 *   large files round-robin from one thread can hold all the memory and
 *   wait on itself), and an error is better than a hang. While others
 *   release memory, a waiter waits as long as it takes.
 *
 * @module
 */

import { Errno, FsError } from "./api.ts";

export interface WriteMemoryOptions {
  /** A first buffer up to this size is granted at once, over the limit if need be. */
  freeBytes?: number;
  /** How long a wait may see no release at all before it fails with ENOMEM; 30 s by default. */
  stuckMs?: number;
}

export interface WriteMemoryStats {
  maxBytes: number;
  reserved: number;
  peak: number;
  /** Reservations that had to wait. */
  waits: number;
  /** Waits that failed with ENOMEM. */
  stuck: number;
}

interface Waiter {
  bytes: number;
  grant: () => void;
  fail: (err: FsError) => void;
  timer?: ReturnType<typeof setTimeout>;
  what: string;
}

export class WriteMemory {
  readonly maxBytes: number;
  readonly freeBytes: number;
  readonly #stuckMs: number;
  #reserved = 0;
  #peak = 0;
  #waits = 0;
  #stuck = 0;
  readonly #queue: Waiter[] = [];

  constructor(maxBytes: number, opts: WriteMemoryOptions = {}) {
    if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`Cannot create write memory: invalid size "${maxBytes}"`);
    }
    this.maxBytes = Math.floor(maxBytes);
    this.freeBytes = opts.freeBytes ?? 64 * 1024;
    this.#stuckMs = opts.stuckMs ?? 30_000;
  }

  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Reserves `bytes` for a buffer of `what` (a key, for the error): at once
   * if they fit and nobody waits before, else when released memory lets
   * them. `first`: the upload's first buffer, granted up to `freeBytes`.
   */
  reserve(bytes: number, what: string, first = false): Promise<void> {
    if (bytes <= 0) return Promise.resolve();
    if ((first && bytes <= this.freeBytes) || (this.#queue.length === 0 && this.#fits(bytes))) {
      this.#add(bytes);
      return Promise.resolve();
    }
    this.#waits++;
    return new Promise((grant, fail) => {
      const w: Waiter = { bytes, grant, fail, what };
      w.timer = this.#arm(w);
      this.#queue.push(w);
    });
  }

  release(bytes: number): void {
    if (bytes <= 0) return;
    this.#reserved = Math.max(0, this.#reserved - bytes);
    // Progress: every waiter's patience starts over.
    for (const w of this.#queue) {
      clearTimeout(w.timer);
      w.timer = this.#arm(w);
    }
    this.#wake();
  }

  /** Grants the queue's head for as long as it fits. */
  #wake(): void {
    while (this.#queue.length > 0 && this.#fits(this.#queue[0].bytes)) {
      const w = this.#queue.shift()!;
      clearTimeout(w.timer);
      this.#add(w.bytes);
      w.grant();
    }
  }

  stats(): WriteMemoryStats {
    return {
      maxBytes: this.maxBytes,
      reserved: this.#reserved,
      peak: this.#peak,
      waits: this.#waits,
      stuck: this.#stuck,
    };
  }

  #fits(bytes: number): boolean {
    return this.#reserved === 0 || this.#reserved + bytes <= this.maxBytes;
  }

  #arm(w: Waiter): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      const i = this.#queue.indexOf(w);
      if (i < 0) return;
      this.#queue.splice(i, 1);
      this.#stuck++;
      w.fail(
        new FsError(
          Errno.ENOMEM,
          `Cannot write "${w.what}": the memory of the files open for writing ` +
            `(${mib(this.#reserved)} of ${mib(this.maxBytes)} MiB) was not released for ` +
            `${this.#stuckMs / 1000} s; close files being written or raise --max-memory`,
        ),
      );
      // The queue's head may fit now that this waiter is gone.
      this.#wake();
    }, this.#stuckMs);
  }

  #add(bytes: number): void {
    this.#reserved += bytes;
    if (this.#reserved > this.#peak) this.#peak = this.#reserved;
  }
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
