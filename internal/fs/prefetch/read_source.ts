/**
 * What the file system core reads an open file through, and the counters a
 * reader reports (logged when a read handle closes, checked by tests and
 * benchmarks). `reader.ts` implements it.
 *
 * @module
 */

/** One open file's reads. */
export interface ReadSource {
  /** Up to `size` bytes at `offset`; shorter (or empty) only at the end of the object. */
  read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Cancels requests in flight and releases all memory; later reads fail. */
  close(): void;
  /** What the reader did so far (requests, resets…), for logs and tests. */
  stats(): ReaderStats;
}

/** What a reader did so far. */
export interface ReaderStats {
  /** GETs issued to S3. */
  requests: number;
  /** Bytes requested from S3. */
  bytesRequested: number;
  /** Parts served entirely from the disk cache. */
  cacheParts: number;
  /** Stream restarts (seeks, errors). */
  resets: number;
  /** One-off GETs for late reads behind the stream. */
  sideReads: number;
  /** Times the budget took back this reader's prefetched data while it was idle. */
  reclaims: number;
  /** The current prefetch window in bytes (0 while reading randomly). */
  window: number;
  /** GETs in flight now. */
  inFlight: number;
  /** Bytes this reader holds reserved in the budget now. */
  reserved: number;
}
