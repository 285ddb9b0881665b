/**
 * The per-handle object reader: sequential prefetch, random reads, seeks.
 *
 * Design. A reader keeps one *stream*: a contiguous, ordered list of parts
 * covering `[streamStart, fetchEnd)` of the object. A part is a byte range in
 * one of four states: planned (known, not requested), in flight (one ranged
 * GET carrying `If-Match: etag`), ready, or failed. Reads are served from the
 * parts: a read inside one ready part returns a `subarray` view (no copy); a
 * read spanning parts is copied once into a fresh buffer.
 *
 * Sequential detection. The first read at offset 0 starts a stream whose first
 * request is 1 MiB + 128 KiB, so small files and the first bytes come back in
 * one round trip. Any other fresh start (a seek, an error, a first read
 * elsewhere) is treated as random: it fetches only about the bytes asked for
 * (at least 128 KiB). A read that continues past what the stream fetched turns
 * it sequential. While the reader moves forward, whenever less than half the
 * window is left ahead of the read position the stream is extended to a
 * part-aligned end one window ahead and the window doubles, up to
 * min(`maxWindow`, the budget's fair share per reader).
 *
 * Seeks. Reads inside the stream (including ones a little ahead of the data
 * in flight, as the kernel's asynchronous readahead sends them out of order)
 * wait for the data. Parts are kept until the read position is 1 MiB past
 * them, so small backward seeks are served from memory. A read further back
 * while streaming is served by a one-off GET without disturbing the stream
 * (late readahead requests look like this); if the next read continues from
 * there, the stream restarts at that point. Anything else restarts the stream:
 * parts nobody waits on are cancelled through their AbortSignal.
 *
 * Memory. Every GET reserves its bytes from the shared `MemoryBudget` before
 * it is issued, and releases them when its part is dropped. Prefetch only
 * issues what `tryReserve` grants (and halves the window when refused); a read
 * that needs a planned part gets the bytes it needs right now through
 * `forceReserve`, splitting the part if the whole of it does not fit, so
 * reads always progress and nothing deadlocks on memory.
 *
 * Consistency. Every GET carries the ETag the file was opened with, and the
 * response's ETag and length are checked, so an object overwritten remotely
 * during a read fails with the client's `PreconditionFailed` instead of mixing
 * bytes of two versions. Any failed read resets the stream; the next read
 * starts afresh (and may succeed).
 *
 * Disk cache. With a `DataCache`, parts are aligned to its blocks; a part is
 * assembled from cached blocks when possible, only the missing run is fetched
 * from S3, and fetched blocks are written back in the background (all in
 * `part_source.ts`; `part.ts` holds the part itself).
 *
 * Buffers. Without a disk cache, a consumed part's buffer goes back to the
 * `BufferPool` for a later GET it fits. So the bytes `read()`
 * returns are valid until the caller next yields: use them (the FUSE session
 * writes them out at once) or copy them.
 *
 * @module
 */

import { bodyBufferSize, type ObjectClient, type S3Error } from "../../s3/object_client.ts";
import { log } from "../../log/mod.ts";
import { prefetchReads } from "../../metrics/mod.ts";
import type { MemoryBudget, Reclaimable } from "./memory_budget.ts";
import type { DataCache } from "./data_cache.ts";
import type { BufferPool } from "./buffer_pool.ts";
import {
  abortedError,
  closedError,
  EMPTY,
  FAILED,
  IN_FLIGHT,
  Part,
  PLANNED,
  READY,
  waitFor,
} from "./part.ts";
import { PartSource } from "./part_source.ts";
import type { ReaderStats, ReadSource } from "./read_source.ts";

export interface ReaderOptions {
  client: ObjectClient;
  bucket: string;
  key: string;
  /** The ETag the file was opened with; every GET is conditional on it. */
  etag: string;
  /** The object size the file was opened with. */
  size: number;
  /** Size of the ranged GETs the window is split into (8 MiB by default). */
  partSize: number;
  budget: MemoryBudget;
  cache?: DataCache;
  /** Prefetch GETs in flight at once for this reader (8 by default; tests use fewer). */
  maxConcurrency?: number;
  /** Largest prefetch window for this reader (128 MiB by default; tests use less). */
  maxWindow?: number;
  /**
   * Where part buffers come from and go back to once consumed. Not used with
   * a `cache`, which keeps views of fetched parts while it writes them out.
   */
  pool?: BufferPool;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** First request of a sequential stream: 1 MiB plus the kernel's 128 KiB readahead tail. */
const FIRST_REQUEST = MiB + 128 * KiB;
/** Smallest GET prefetch splits a part into to use the last of the budget. */
const MIN_PREFETCH_SPLIT = 256 * KiB;
/** Smallest GET for a random read. */
const MIN_RANDOM_REQUEST = 128 * KiB;
/** How far behind the read position parts are kept for backward seeks. */
const BACK_WINDOW = MiB;
/** How far past the fetched data a read may land and still count as sequential. */
const FORWARD_SLACK = 2 * MiB;
const DEFAULT_MAX_CONCURRENCY = 8;
const DEFAULT_MAX_WINDOW = 128 * MiB;

export function createReader(opts: ReaderOptions): PrefetchReader {
  return new PrefetchReader(opts);
}

export class PrefetchReader implements ReadSource, Reclaimable {
  readonly #bucket: string;
  readonly #key: string;
  readonly #size: number;
  readonly #partSize: number;
  readonly #budget: MemoryBudget;
  readonly #pool: BufferPool | undefined;
  readonly #source: PartSource;
  readonly #maxConcurrency: number;
  readonly #maxWindow: number;
  /** Set while the reader streams sequentially: only those count for the budget's fair share. */
  #unregister: (() => void) | undefined = undefined;

  /** The stream: contiguous parts in offset order. */
  #parts: Part[] = [];
  /** End of the last part (or the stream start while it is empty). */
  #fetchEnd = 0;
  /** Highest end of a read served from the stream. */
  #pos = 0;
  /** Prefetch window in bytes; 0 while reading randomly. */
  #window = 0;
  /** Set when prefetch was refused memory, so the window halves once per refusal episode. */
  #starved = false;
  /** End of the last one-off read behind the stream, to detect a real backward seek. */
  #sideEnd = -1;
  /** Every part with a GET in flight, in or out of the stream. */
  readonly #active = new Set<Part>();
  #reads = 0;
  /** `performance.now()` of the last read, for idle reclaim. */
  #lastReadAt = 0;
  #closed = false;
  #resets = 0;
  #sideReads = 0;
  #reclaims = 0;

  constructor(opts: ReaderOptions) {
    if (!Number.isInteger(opts.partSize) || opts.partSize <= 0) {
      throw new RangeError(`Cannot create reader: invalid part size "${opts.partSize}"`);
    }
    if (!Number.isInteger(opts.size) || opts.size < 0) {
      throw new RangeError(`Cannot create reader: invalid object size "${opts.size}"`);
    }
    this.#bucket = opts.bucket;
    this.#key = opts.key;
    this.#size = opts.size;
    this.#partSize = opts.partSize;
    this.#budget = opts.budget;
    this.#pool = opts.cache ? undefined : opts.pool;
    this.#source = new PartSource({
      client: opts.client,
      bucket: opts.bucket,
      key: opts.key,
      etag: opts.etag,
      cache: opts.cache,
      pool: this.#pool,
    });
    this.#maxConcurrency = Math.max(1, opts.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY);
    this.#maxWindow = Math.max(FIRST_REQUEST, opts.maxWindow ?? DEFAULT_MAX_WINDOW);
  }

  stats(): ReaderStats {
    let reserved = 0;
    for (const p of this.#parts) reserved += p.reserved;
    for (const p of this.#active) if (p.dropped) reserved += p.reserved;
    return {
      requests: this.#source.requests,
      bytesRequested: this.#source.bytesRequested,
      cacheParts: this.#source.cacheParts,
      resets: this.#resets,
      sideReads: this.#sideReads,
      reclaims: this.#reclaims,
      window: this.#window,
      inFlight: this.#active.size,
      reserved,
    };
  }

  read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    // Not async: a read served from a ready part costs one settled promise, no async frame.
    try {
      return this.#read(offset, size, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.#closed) throw closedError(this.#key);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(size) || size < 0) {
      throw new RangeError(`Cannot read "${this.#key}": invalid range "${offset}+${size}"`);
    }
    const end = Math.min(offset + size, this.#size);
    if (offset >= end) return Promise.resolve(EMPTY);
    const first = this.#reads++ === 0;
    this.#lastReadAt = performance.now();

    if (!this.#inStream(offset)) {
      const streamStart = this.#parts[0]?.start ?? 0;
      if (this.#window > 0 && offset < streamStart && offset !== this.#sideEnd) {
        return this.#sideRead(offset, end, signal);
      }
      const sequential = (first && offset === 0) || offset === this.#sideEnd;
      this.#reset(this.#align(offset, false), sequential ? FIRST_REQUEST : 0);
    }

    if (end > this.#fetchEnd) {
      let want = end;
      if (this.#parts.length === 0) {
        // A fresh stream: the first request, or just about what was asked for.
        want = Math.max(
          end,
          this.#fetchEnd + (this.#window > 0 ? FIRST_REQUEST : MIN_RANDOM_REQUEST),
        );
      } else if (this.#window === 0) {
        // Reading on past a random fetch: this is a sequential reader after all.
        this.#setWindow(FIRST_REQUEST);
      }
      this.#plan(this.#align(want, true));
    }
    if (end > this.#pos) {
      this.#pos = end;
      this.#dropBehind(offset);
      this.#maybeExtend();
    }
    this.#pump();
    return this.#serve(offset, end, signal);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#parts) p.dropped = true;
    for (const p of this.#active) this.#abort(p, closedError(this.#key));
    for (const p of this.#parts) this.#release(p);
    this.#parts = [];
    this.#setWindow(0);
  }

  /** Gives back prefetched memory when idle since `cutoff`; the next read starts a new stream. */
  reclaimIdle(cutoff: number): void {
    if (this.#closed || this.#lastReadAt > cutoff || this.#parts.length === 0) return;
    // A read still waiting on S3 is not idle, however long it takes.
    if (this.#parts.some((p) => p.waiters > 0)) return;
    log.debug("Dropping the prefetched data of an idle reader", {
      bucket: this.#bucket,
      key: this.#key,
    });
    this.#reset(this.#pos, 0);
    this.#reclaims++;
  }

  /** Whether a read at `offset` continues the current stream. */
  #inStream(offset: number): boolean {
    const first = this.#parts[0];
    if (first === undefined || offset < first.start) return false;
    const slack = this.#window > 0 ? FORWARD_SLACK : 0;
    return offset <= this.#fetchEnd + slack;
  }

  #reset(offset: number, window: number): void {
    for (const p of this.#parts) this.#drop(p);
    this.#parts = [];
    this.#fetchEnd = offset;
    this.#pos = offset;
    this.#setWindow(window);
    this.#starved = false;
    this.#sideEnd = -1;
    this.#resets++;
  }

  /** Sets the window, registering with the budget while streaming (idle or random readers do not shrink others' share). */
  #setWindow(window: number): void {
    this.#window = window;
    if (window > 0 && this.#unregister === undefined) {
      this.#unregister = this.#budget.registerReader(this);
    } else if (window === 0 && this.#unregister !== undefined) {
      this.#unregister();
      this.#unregister = undefined;
    }
  }

  /** Appends planned parts from the stream's end to `end`, split at part-size boundaries. */
  #plan(end: number): void {
    let start = this.#fetchEnd;
    while (start < end) {
      let stop = this.#align((Math.floor(start / this.#partSize) + 1) * this.#partSize, true);
      if (stop > end) stop = end;
      this.#parts.push(new Part(start, stop));
      start = stop;
    }
    if (end > this.#fetchEnd) this.#fetchEnd = end;
  }

  /** Extends the stream one window ahead when less than half a window is left. */
  #maybeExtend(): void {
    if (this.#window === 0 || this.#fetchEnd >= this.#size) return;
    const cap = Math.max(FIRST_REQUEST, Math.min(this.#maxWindow, this.#budget.fairShare));
    if (this.#window > cap) this.#window = cap;
    if (this.#fetchEnd - this.#pos >= this.#window / 2) return;
    const target = Math.ceil((this.#pos + this.#window) / this.#partSize) * this.#partSize;
    this.#plan(this.#align(target, true));
    this.#window = Math.min(this.#window * 2, cap);
  }

  /**
   * Drops parts the read position has left more than the back window behind
   * (forced parts as soon as it has passed them), never one ending after
   * `offset`, where the current read starts.
   */
  #dropBehind(offset: number): void {
    let n = 0;
    const parts = this.#parts;
    // Keep the last part so the stream always knows where it stands.
    while (n < parts.length - 1) {
      const p = parts[n]!;
      if (p.end > offset || p.end + (p.forced ? 0 : BACK_WINDOW) > this.#pos) break;
      this.#drop(p);
      n++;
    }
    if (n > 0) parts.splice(0, n);
  }

  /** Issues planned parts in order while concurrency and memory allow. */
  #pump(): void {
    if (this.#closed) return;
    for (const p of this.#parts) {
      if (this.#active.size >= this.#maxConcurrency) return;
      if (p.state !== PLANNED) continue;
      const len = p.end - p.start;
      if (!this.#budget.tryReserve(len, this)) {
        // Use what is left of the budget for a smaller GET rather than none.
        const head = this.#align(p.start + this.#budget.available, false) - p.start;
        if (head >= MIN_PREFETCH_SPLIT && head < len && this.#budget.tryReserve(head)) {
          const left = new Part(p.start, p.start + head);
          this.#parts.splice(this.#parts.indexOf(p), 1, left, new Part(left.end, p.end));
          this.#issue(left, head);
        }
        if (!this.#starved && this.#window > 0) {
          this.#starved = true;
          this.#window = Math.max(FIRST_REQUEST, Math.floor(this.#window / 2));
        }
        return;
      }
      this.#starved = false;
      this.#issue(p, len);
    }
  }

  /**
   * Issues planned part `p` because a read needs `[offset, end)` of it now.
   * Returns the part to wait on: `p`, or the piece of it the budget allowed.
   */
  #force(p: Part, offset: number, end: number): Part {
    const len = p.end - p.start;
    if (this.#budget.tryReserve(len, this)) {
      this.#issue(p, len);
      return p;
    }
    const a = Math.max(p.start, this.#align(offset, false));
    const b = Math.min(p.end, this.#align(end, true));
    const pieces: Part[] = [];
    if (a > p.start) pieces.push(new Part(p.start, a));
    const mid = new Part(a, b);
    pieces.push(mid);
    if (b < p.end) pieces.push(new Part(b, p.end));
    this.#parts.splice(this.#parts.indexOf(p), 1, ...pieces);
    this.#budget.forceReserve(b - a);
    mid.forced = true;
    this.#issue(mid, b - a);
    return mid;
  }

  #issue(p: Part, reserved: number): void {
    p.state = IN_FLIGHT;
    p.reserved = reserved;
    p.controller = new AbortController();
    p.done = new Promise<void>((resolve) => p.settle = resolve);
    this.#active.add(p);
    this.#load(p);
  }

  async #load(p: Part): Promise<void> {
    try {
      const data = await this.#source.fetch(p.start, p.end, p.controller!.signal);
      if (p.state === IN_FLIGHT) {
        p.data = data;
        p.state = READY;
      }
    } catch (err) {
      if (p.state === IN_FLIGHT) {
        p.state = FAILED;
        p.error = err;
      }
    } finally {
      this.#active.delete(p);
      if (p.state === FAILED || p.dropped) this.#release(p);
      p.settle!();
      this.#pump();
    }
  }

  /** Serves `[offset, end)` from the stream, which covers it. */
  #serve(offset: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
    const i = this.#find(offset);
    let p = this.#parts[i]!;
    if (p.end >= end) {
      // The common case: one part, returned as a view.
      if (p.state === READY) {
        prefetchReads.inc({ result: "hit" });
        return Promise.resolve(p.data.subarray(offset - p.start, end - p.start));
      }
      prefetchReads.inc({ result: "wait" });
      if (p.state === PLANNED) p = this.#force(p, offset, end);
      return this.#serveOne(p, offset, end, signal);
    }
    // A span is copied whether or not its parts are ready: counted by its first part.
    prefetchReads.inc({ result: p.state === READY ? "hit" : "wait" });
    return this.#serveSpan(i, offset, end, signal);
  }

  async #serveOne(p: Part, offset: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (p.state !== READY) {
      p.waiters++;
      try {
        await waitFor(p, signal, this.#key);
      } finally {
        p.waiters--;
      }
      if (p.state !== READY) throw this.#fail(p);
    }
    return p.data.subarray(offset - p.start, end - p.start);
  }

  /** Serves a read spanning parts, copied once into a new buffer. */
  async #serveSpan(
    i: number,
    offset: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    let p: Part;
    const needed: Part[] = [];
    while (i < this.#parts.length && this.#parts[i]!.start < end) {
      p = this.#parts[i]!;
      if (p.state === PLANNED) {
        p = this.#force(p, Math.max(offset, p.start), Math.min(end, p.end));
        i = this.#parts.indexOf(p);
      }
      p.waiters++;
      needed.push(p);
      i++;
    }
    const out = new Uint8Array(end - offset);
    try {
      for (const q of needed) {
        if (q.state === IN_FLIGHT) await waitFor(q, signal, this.#key);
        if (q.state !== READY) throw this.#fail(q);
        const from = Math.max(offset, q.start);
        const to = Math.min(end, q.end);
        out.set(q.data.subarray(from - q.start, to - q.start), from - offset);
      }
    } finally {
      for (const q of needed) q.waiters--;
    }
    return out;
  }

  /** A one-off GET for a late read behind the stream; the stream is left alone. */
  async #sideRead(offset: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
    this.#sideReads++;
    this.#sideEnd = end;
    const p = new Part(
      this.#align(offset, false),
      this.#align(Math.max(end, offset + MIN_RANDOM_REQUEST), true),
    );
    p.dropped = true;
    this.#budget.forceReserve(p.end - p.start);
    this.#issue(p, p.end - p.start);
    p.waiters++;
    try {
      await waitFor(p, signal, this.#key);
    } finally {
      p.waiters--;
    }
    if (p.state !== READY) throw p.error;
    // The part's memory is released already: hand out its data as is.
    return p.data.subarray(offset - p.start, end - p.start);
  }

  /** The error of failed part `p`; resets the stream if `p` is still part of it. */
  #fail(p: Part): unknown {
    if (!p.dropped && !this.#closed) {
      log.debug("Object read failed, resetting the stream", {
        bucket: this.#bucket,
        key: this.#key,
        start: p.start,
        end: p.end,
        error: p.error instanceof Error ? p.error.message : String(p.error),
      });
      this.#reset(this.#fetchEnd, 0);
    }
    return p.error;
  }

  /** Index of the part containing `offset` (which the stream must cover). */
  #find(offset: number): number {
    const parts = this.#parts;
    let lo = 0;
    let hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (parts[mid]!.start <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Takes `p` out of the stream: cancels it if nobody waits, releases its memory when possible. */
  #drop(p: Part): void {
    p.dropped = true;
    if (p.state === IN_FLIGHT) {
      if (p.waiters === 0) this.#abort(p, abortedError(this.#key));
      // Otherwise its memory is released when it settles.
    } else {
      this.#release(p);
    }
  }

  #abort(p: Part, err: S3Error): void {
    if (p.state !== IN_FLIGHT) return;
    p.state = FAILED;
    p.error = err;
    this.#active.delete(p);
    this.#release(p);
    p.controller!.abort(err);
    p.settle!();
  }

  #release(p: Part): void {
    this.#recycle(p);
    if (p.reserved === 0) return;
    this.#budget.release(p.reserved);
    p.reserved = 0;
  }

  /** Gives a consumed part's buffer back to the pool: only a whole GET body nobody waits on. */
  #recycle(p: Part): void {
    const pool = this.#pool;
    if (pool === undefined || p.state !== READY || p.waiters > 0) return;
    const data = p.data;
    // A GET body starts its buffer, which has room for it (see GetOptions.into).
    if (data.byteOffset !== 0 || data.buffer.byteLength < bodyBufferSize(data.byteLength)) return;
    p.data = EMPTY;
    pool.give(data.buffer as ArrayBuffer);
  }

  /** Rounds `offset` to the part alignment unit (down, or up capped at the object size). */
  #align(offset: number, up: boolean): number {
    const unit = this.#source.unit;
    if (unit === 1) return Math.min(offset, this.#size);
    const r = offset % unit;
    if (r === 0) return Math.min(offset, this.#size);
    return up ? Math.min(offset - r + unit, this.#size) : offset - r;
  }
}
