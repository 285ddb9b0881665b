/**
 * The simplest `ReadSource`: one ranged GET per read call, pinned to the
 * ETag seen at open with If-Match, so an overwrite surfaces as an error
 * (PreconditionFailed) and never as a mix of old and new bytes.
 *
 * It stands in for the prefetcher (`./prefetch/mod.ts`) and serves as the
 * reference behaviour the prefetcher must match.
 *
 * @module
 */

import type { ObjectClient } from "../s3/object_client.ts";

/** What an open read handle reads through (the prefetcher implements the same shape). */
export interface ReadSource {
  read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array>;
  close(): void;
}

export interface DirectReaderOptions {
  client: ObjectClient;
  bucket: string;
  key: string;
  etag: string;
  size: number;
}

export function createDirectReader(o: DirectReaderOptions): ReadSource {
  let closed = false;
  return {
    async read(offset: number, size: number, signal?: AbortSignal): Promise<Uint8Array> {
      if (closed) throw new Error(`Cannot read "${o.key}": reader is closed`);
      const end = Math.min(offset + size, o.size);
      if (offset >= end) return new Uint8Array(0);
      const got = await o.client.getObject(o.bucket, o.key, {
        range: { start: offset, end },
        ifMatch: o.etag,
        signal,
      });
      return got.body;
    },
    close() {
      closed = true;
    },
  };
}
