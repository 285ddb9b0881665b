/**
 * Benchmark of the read path against a throwaway MinIO: the raw object client
 * (concurrent part-sized ranged GETs, the best the client can do) versus a
 * prefetching reader consumed like the kernel does (sequential 128 KiB or
 * 1 MiB reads, a few in flight), plus random reads and a cached re-read.
 *
 *     deno run -A internal/fs/prefetch/bench.ts [sizeMiB=1024] [readKiB=128] [inflight=4]
 *
 * Not a test: it prints numbers and asserts nothing.
 *
 * @module
 */

import { AwsObjectClient } from "../../s3/aws_object_client.ts";
import { startMinio } from "../../../tests/support/minio.ts";
import { createDataCache, createReader, type DataCache, MemoryBudget } from "./mod.ts";

const MiB = 1024 * 1024;
const sizeMiB = Number(Deno.args[0] ?? 1024);
const readKiB = Number(Deno.args[1] ?? 128);
const inflight = Number(Deno.args[2] ?? 4);
const size = sizeMiB * MiB;
const partSize = 8 * MiB;

const minio = await startMinio({ quiet: true });
const client = new AwsObjectClient({
  endpointUrl: minio.endpoint,
  region: minio.region,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  maxConnections: 64,
});
const cacheDir = await Deno.makeTempDir({ prefix: "s3csi-bench-cache-" });
let cache: DataCache | undefined;
try {
  await client.createBucket("bench");
  const etag = await upload(size);
  const report = (name: string, bytes: number, ms: number) =>
    console.log(`${name.padEnd(44)} ${(bytes / MiB / (ms / 1000)).toFixed(0).padStart(6)} MiB/s`);

  for (let round = 0; round < 2; round++) {
    let t = performance.now();
    await rawRead(etag, 16);
    report("raw client, 16 concurrent 8 MiB GETs", size, performance.now() - t);

    const budget = new MemoryBudget(1024 * MiB);
    t = performance.now();
    await readerRead(etag, budget);
    report(`reader, ${readKiB} KiB reads, ${inflight} in flight`, size, performance.now() - t);
    console.log(`  budget peak ${(budget.peak / MiB).toFixed(0)} MiB`);
  }

  // Random 128 KiB reads: time per read.
  {
    const budget = new MemoryBudget(1024 * MiB);
    const reader = createReader({
      client,
      bucket: "bench",
      key: "obj",
      etag,
      size,
      partSize,
      budget,
    });
    const n = 200;
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const off = Math.floor(Math.random() * (size - 128 * 1024));
      await reader.read(off, 128 * 1024);
    }
    const ms = performance.now() - t;
    console.log(
      `random 128 KiB reads: ${(ms / n).toFixed(2)} ms each, ${reader.stats().requests} GETs`,
    );
    reader.close();
  }

  // Cached re-read.
  {
    cache = await createDataCache({ dir: cacheDir, maxBytes: size + 64 * MiB });
    const budget = new MemoryBudget(1024 * MiB);
    let t = performance.now();
    await readerRead(etag, budget, cache);
    report("reader with cache, first read", size, performance.now() - t);
    await cache.idle(); // the first read's blocks are on disk
    t = performance.now();
    await readerRead(etag, budget, cache);
    report("reader with cache, second read", size, performance.now() - t);
    console.log(`  cache ${JSON.stringify(cache.stats())}`);
  }
} finally {
  // Its background writes land before the directory goes.
  await cache?.close();
  client.close();
  await minio.stop();
  await Deno.remove(cacheDir, { recursive: true });
}

async function upload(bytes: number): Promise<string> {
  const id = await client.createMultipartUpload("bench", "obj");
  const chunk = new Uint8Array(64 * MiB);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  for (let i = 65536; i < chunk.length; i += 65536) chunk.copyWithin(i, 0, 65536);
  const parts = [];
  for (let off = 0, n = 1; off < bytes; off += chunk.length, n++) {
    const body = chunk.subarray(0, Math.min(chunk.length, bytes - off));
    parts.push({ partNumber: n, etag: await client.uploadPart("bench", "obj", id, n, body) });
  }
  return (await client.completeMultipartUpload("bench", "obj", id, parts)).etag;
}

async function rawRead(etag: string, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < size) {
      const start = next;
      next += partSize;
      await client.getObject("bench", "obj", {
        range: { start, end: Math.min(size, start + partSize) },
        ifMatch: etag,
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function readerRead(
  etag: string,
  budget: MemoryBudget,
  cache?: DataCache,
): Promise<void> {
  const reader = createReader({
    client,
    bucket: "bench",
    key: "obj",
    etag,
    size,
    partSize,
    budget,
    ...(cache ? { cache } : {}),
  });
  const step = readKiB * 1024;
  let next = 0;
  let total = 0;
  // Like the kernel: a few reads outstanding at consecutive offsets.
  const worker = async () => {
    while (next < size) {
      const off = next;
      next += step;
      const b = await reader.read(off, step);
      total += b.length;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  reader.close();
  if (total !== size) throw new Error(`Benchmark read "${total}" bytes, expected "${size}"`);
}
