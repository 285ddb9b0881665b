/**
 * The benchmark's baseline: the same transfers as through the mount, done
 * directly with the project's S3 client layer (`AwsObjectClient`) and no
 * FUSE in between, at the concurrency and part size that suit it best. The
 * mount cannot be faster than its own client, so the ratio mount / baseline
 * says how much the file system layers (kernel FUSE, session, prefetcher,
 * upload queue) cost.
 *
 * @module
 */
import type { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { allocate } from "../internal/fs/prefetch/mod.ts";
import { bodyBufferSize } from "../internal/s3/object_client.ts";

export const MIB = 1024 * 1024;

/** A transfer's outcome: bytes moved and wall time. */
export interface Timed {
  bytes: number;
  ms: number;
}

export function mibPerSec(t: Timed): number {
  return t.bytes / MIB / (t.ms / 1000);
}

/** Runs `n` workers that take indexes 0..count-1 in order until none are left. */
async function pool(n: number, count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, count) }, worker));
}

/**
 * Reads `keys` of `size` bytes each, all at once, as `partSize` ranged GETs,
 * `concurrency` per key. Each GET reads into the memory of one already
 * consumed (`GetOptions.into`), or a fresh buffer allocated the way the
 * mount's prefetcher allocates them.
 */
export async function rawRead(
  client: AwsObjectClient,
  bucket: string,
  keys: string[],
  size: number,
  partSize: number,
  concurrency: number,
): Promise<Timed> {
  const parts = Math.ceil(size / partSize);
  const t = performance.now();
  let bytes = 0;
  const free: ArrayBuffer[] = [];
  await Promise.all(keys.map((key) =>
    pool(concurrency, parts, async (i) => {
      const start = i * partSize;
      const got = await client.getObject(bucket, key, {
        range: { start, end: Math.min(size, start + partSize) },
        into: free.pop() ?? allocate(bodyBufferSize(partSize)),
      });
      bytes += got.body.byteLength;
      free.push(got.body.buffer as ArrayBuffer);
    })
  ));
  const ms = performance.now() - t;
  if (bytes !== size * keys.length) {
    throw new Error(`Raw read got "${bytes}" bytes, expected "${size * keys.length}"`);
  }
  return { bytes, ms };
}

/** Uploads `size` bytes of `data` (repeated) as one multipart object. */
export async function rawWrite(
  client: AwsObjectClient,
  bucket: string,
  key: string,
  size: number,
  partSize: number,
  concurrency: number,
  data: Uint8Array,
): Promise<Timed> {
  if (data.byteLength < partSize) throw new RangeError("Raw write needs a part-sized buffer");
  const parts = Math.ceil(size / partSize);
  const t = performance.now();
  const id = await client.createMultipartUpload(bucket, key);
  const etags: string[] = [];
  await pool(concurrency, parts, async (i) => {
    const body = data.subarray(0, Math.min(partSize, size - i * partSize));
    etags[i] = await client.uploadPart(bucket, key, id, i + 1, body);
  });
  await client.completeMultipartUpload(
    bucket,
    key,
    id,
    etags.map((etag, i) => ({ partNumber: i + 1, etag })),
  );
  return { bytes: size, ms: performance.now() - t };
}

/** Random `blockSize` ranged GETs of one object, one at a time, for `seconds`. */
export async function rawRandomRead(
  client: AwsObjectClient,
  bucket: string,
  key: string,
  size: number,
  blockSize: number,
  seconds: number,
): Promise<{ ops: number; ms: number }> {
  const t = performance.now();
  let ops = 0;
  while (performance.now() - t < seconds * 1000) {
    const start = Math.floor(Math.random() * (size / blockSize)) * blockSize;
    await client.getObject(bucket, key, { range: { start, end: start + blockSize } });
    ops++;
  }
  return { ops, ms: performance.now() - t };
}

/** `count` small PutObjects one after another (as a shell loop creates files). */
export async function rawCreate(
  client: AwsObjectClient,
  bucket: string,
  prefix: string,
  count: number,
): Promise<Timed> {
  const body = new TextEncoder().encode("x\n");
  const t = performance.now();
  for (let i = 0; i < count; i++) await client.putObject(bucket, `${prefix}${i}`, body);
  return { bytes: count * body.byteLength, ms: performance.now() - t };
}

/** Lists every key below `prefix` with the delimiter, as a directory listing does. */
export async function rawList(
  client: AwsObjectClient,
  bucket: string,
  prefix: string,
): Promise<{ entries: number; ms: number }> {
  const t = performance.now();
  let entries = 0;
  let token: string | undefined;
  do {
    const page = await client.listObjects(bucket, {
      prefix,
      delimiter: "/",
      ...(token ? { continuationToken: token } : {}),
    });
    entries += page.objects.length + page.commonPrefixes.length;
    token = page.nextContinuationToken;
  } while (token);
  return { entries, ms: performance.now() - t };
}

/** Creates `count` small objects `${prefix}${name(i)}` with `concurrency` PUTs in flight. */
export async function putMany(
  client: AwsObjectClient,
  bucket: string,
  count: number,
  concurrency: number,
  name: (i: number) => string,
): Promise<void> {
  const body = new TextEncoder().encode("bench\n");
  await pool(concurrency, count, async (i) => {
    await client.putObject(bucket, name(i), body);
  });
}

/** Time to the first byte: a 1-byte ranged GET. */
export async function rawFirstByte(
  client: AwsObjectClient,
  bucket: string,
  key: string,
): Promise<number> {
  const t = performance.now();
  await client.getObject(bucket, key, { range: { start: 0, end: 1 } });
  return performance.now() - t;
}
