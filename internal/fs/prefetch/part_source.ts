/**
 * Where a reader's part bytes come from. Without a disk cache: one ranged
 * GET. With one: the part's blocks are looked up in the cache, only the run
 * of blocks it misses is fetched (one GET), the fetched blocks are written
 * back in the background, and the part is assembled from both.
 *
 * Every GET carries `If-Match` with the ETag the file was opened with, and
 * the response's ETag and length are checked, so a part never mixes bytes
 * of two versions of the object.
 *
 * @module
 */

import { bodyBufferSize, type ObjectClient, S3Error } from "../../s3/object_client.ts";
import type { BufferPool } from "./buffer_pool.ts";
import type { CachedObjectId, DataCache } from "./data_cache.ts";

export interface PartSourceOptions {
  client: ObjectClient;
  bucket: string;
  key: string;
  etag: string;
  cache: DataCache | undefined;
  /** Where GET bodies are read into (not used with a cache, which keeps views of them). */
  pool: BufferPool | undefined;
}

export class PartSource {
  /** Alignment of part boundaries: the cache block size, or 1 without a cache. */
  readonly unit: number;
  /** GETs issued to S3. */
  requests = 0;
  /** Bytes requested from S3. */
  bytesRequested = 0;
  /** Parts served entirely from the disk cache. */
  cacheParts = 0;
  readonly #o: PartSourceOptions;
  readonly #cacheId: CachedObjectId;

  constructor(o: PartSourceOptions) {
    this.#o = o;
    this.#cacheId = { bucket: o.bucket, key: o.key, etag: o.etag };
    this.unit = o.cache ? o.cache.blockSize : 1;
  }

  /** The bytes `[start, end)` of the object version pinned at open. */
  async fetch(start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    const cache = this.#o.cache;
    if (cache === undefined || start % this.unit !== 0) {
      return await this.#get(start, end, signal);
    }
    const unit = this.unit;
    const firstBlock = start / unit;
    const count = Math.ceil((end - start) / unit);
    const lookups: Promise<Uint8Array | null>[] = [];
    for (let i = 0; i < count; i++) lookups.push(cache.get(this.#cacheId, firstBlock + i));
    const blocks = await Promise.all(lookups);
    let firstMiss = -1;
    let lastMiss = -1;
    for (let i = 0; i < count; i++) {
      const blockStart = start + i * unit;
      const expected = Math.min(blockStart + unit, end) - blockStart;
      const b = blocks[i];
      if (b === null || b === undefined || b.length !== expected) {
        blocks[i] = null;
        if (firstMiss < 0) firstMiss = i;
        lastMiss = i;
      }
    }
    if (firstMiss < 0) {
      this.cacheParts++;
      if (count === 1) return blocks[0]!;
      return assemble(start, end, blocks as Uint8Array[], unit, undefined, 0);
    }
    const fetchStart = start + firstMiss * unit;
    const fetchEnd = Math.min(start + (lastMiss + 1) * unit, end);
    const body = await this.#get(fetchStart, fetchEnd, signal);
    for (let i = firstMiss; i <= lastMiss; i++) {
      if (blocks[i] !== null) continue;
      const from = (i - firstMiss) * unit;
      cache.put(
        this.#cacheId,
        firstBlock + i,
        body.subarray(from, Math.min(from + unit, body.length)),
      );
    }
    if (fetchStart === start && fetchEnd === end) return body;
    return assemble(start, end, blocks, unit, body, fetchStart);
  }

  /** One conditional ranged GET, checked against the ETag and the range length. */
  async #get(start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    const { client, bucket, key, etag, pool } = this.#o;
    this.requests++;
    this.bytesRequested += end - start;
    const res = await client.getObject(bucket, key, {
      range: { start, end },
      ifMatch: etag,
      signal,
      into: pool?.acquire(bodyBufferSize(end - start)),
    });
    if (res.etag && res.etag !== etag) {
      throw new S3Error(
        "PreconditionFailed",
        `Read of "${key}" failed: ETag is "${res.etag}", expected "${etag}"`,
        412,
      );
    }
    if (res.body.length !== end - start) {
      throw new S3Error(
        "Other",
        `Read of "${key}" failed: got "${res.body.length}" bytes for range "${start}-${end}"`,
      );
    }
    return res.body;
  }
}

/** Copies cached blocks and the fetched run `body` (starting at `bodyStart`) into one buffer. */
function assemble(
  start: number,
  end: number,
  blocks: (Uint8Array | null)[],
  unit: number,
  body: Uint8Array | undefined,
  bodyStart: number,
): Uint8Array {
  const out = new Uint8Array(end - start);
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i];
    if (b) out.set(b, i * unit);
  }
  if (body) out.set(body, bodyStart - start);
  return out;
}
