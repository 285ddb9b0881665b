import assert from "node:assert/strict";
import { join } from "node:path";
import { setSink } from "../../log/mod.ts";
import {
  createDataCache,
  createReader,
  type DataCache,
  type DataCacheOptions,
  MemoryBudget,
  type ReaderOptions,
} from "./mod.ts";
import { assertBytes, pattern, RecordingClient } from "./_recording_client.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const OBJ = { bucket: "bucket", key: "a/b.bin", etag: '"e1"' };

/** Log lines written during the current test. */
let logged: string[] = [];

/**
 * Runs `fn` with `open()`, which creates caches in a fresh directory. Every
 * cache opened is closed before the directory is removed, even when `fn`
 * fails: close waits for the cache's background writes, which would
 * otherwise land in a directory being removed and hide `fn`'s own error.
 */
async function withDir(
  fn: (open: (o: Omit<DataCacheOptions, "dir">) => Promise<DataCache>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-cache-test-" });
  const caches: DataCache[] = [];
  const open = async (o: Omit<DataCacheOptions, "dir">) => {
    const cache = await createDataCache({ ...o, dir });
    caches.push(cache);
    return cache;
  };
  logged = [];
  const prev = setSink({ write: (line) => logged.push(line) });
  try {
    await fn(open);
  } finally {
    for (const c of caches) await c.close();
    setSink(prev);
    await Deno.remove(dir, { recursive: true });
  }
}

async function blockFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) out.push(join(dir, e.name));
  return out.sort();
}

Deno.test("createDataCache() stores blocks that get() returns intact", async () => {
  await withDir(async (open) => {
    const cache = await open({ maxBytes: 16 * MiB, blockSize: 64 * KiB });
    const a = pattern(64 * KiB, 1);
    const b = pattern(1000, 2);
    await cache.put(OBJ, 0, a);
    await cache.put(OBJ, 7, b);
    assert.deepEqual(await cache.get(OBJ, 0), a);
    assert.deepEqual(await cache.get(OBJ, 7), b);
    assert.equal(await cache.get(OBJ, 1), null);
    assert.equal(await cache.get({ ...OBJ, etag: '"e2"' }, 0), null, "another version hit");
    assert.equal(await cache.get({ ...OBJ, key: "a/c.bin" }, 0), null, "another key hit");
    const s = cache.stats();
    assert.equal(s.hits, 2);
    assert.equal(s.misses, 3);
    assert.equal(s.blocks, 2);
    await cache.close();
  });
});

Deno.test("DataCache.get() treats a corrupt or truncated block as a miss", async () => {
  await withDir(async (open) => {
    const cache = await open({ maxBytes: 16 * MiB, blockSize: 64 * KiB });
    await cache.put(OBJ, 0, pattern(64 * KiB, 1));
    await cache.put(OBJ, 1, pattern(64 * KiB, 2));
    const [f0, f1] = await blockFiles(cache.dir);
    // Flip one data byte in the first file, truncate the second.
    const bytes = await Deno.readFile(f0!);
    bytes[bytes.length - 10]! ^= 0xff;
    await Deno.writeFile(f0!, bytes);
    await Deno.truncate(f1!, 1000);
    assert.equal(await cache.get(OBJ, 0), null);
    assert.equal(await cache.get(OBJ, 1), null);
    assert.equal(cache.stats().corrupt, 2);
    assert.equal(logged.filter((l) => l.includes("integrity check")).length, 2);
    assert.equal(cache.stats().blocks, 0, "corrupt blocks stay indexed");
    await cache.close();
  });
});

Deno.test("DataCache evicts least recently used blocks to stay under maxBytes", async () => {
  await withDir(async (open) => {
    const blockSize = 64 * KiB;
    const cache = await open({ maxBytes: 4 * blockSize + 512, blockSize });
    for (let i = 0; i < 4; i++) await cache.put(OBJ, i, pattern(blockSize - 200, i));
    assert.ok(await cache.get(OBJ, 0), "block 0 missing before eviction");
    // Block 0 was just used, so block 1 is the oldest.
    for (let i = 4; i < 6; i++) await cache.put(OBJ, i, pattern(blockSize - 200, i));
    const s = cache.stats();
    assert.ok(s.bytes <= 4 * blockSize + 512, `bytes ${s.bytes}`);
    assert.ok(s.evictions >= 2);
    assert.equal(await cache.get(OBJ, 1), null);
    assert.deepEqual(await cache.get(OBJ, 0), pattern(blockSize - 200, 0));
    assert.deepEqual(await cache.get(OBJ, 5), pattern(blockSize - 200, 5));
    await cache.close();
  });
});

Deno.test("DataCache keeps the bytes on disk under maxBytes", async () => {
  await withDir(async (open) => {
    const blockSize = 32 * KiB;
    const cache = await open({ maxBytes: 10 * blockSize, blockSize });
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => cache.put(OBJ, i, pattern(blockSize, i))),
    );
    // Evicted blocks' files are removed in the background.
    await cache.idle();
    let onDisk = 0;
    for (const f of await blockFiles(cache.dir)) onDisk += (await Deno.stat(f)).size;
    assert.ok(onDisk <= 10 * blockSize, `on disk ${onDisk}`);
    assert.equal(onDisk, cache.stats().bytes);
    await cache.close();
  });
});

Deno.test("createDataCache() wipes its mount directory at start and close() removes it", async () => {
  await withDir(async (open) => {
    const first = await open({ maxBytes: MiB, mountId: "m1" });
    await first.put(OBJ, 0, pattern(100));
    assert.equal((await blockFiles(first.dir)).length, 1);
    // A restart of the same mount (the first one crashed) starts empty.
    const second = await open({ maxBytes: MiB, mountId: "m1" });
    assert.equal(second.dir, first.dir);
    assert.equal((await blockFiles(second.dir)).length, 0);
    assert.equal(await second.get(OBJ, 0), null);
    await second.close();
    await assert.rejects(Deno.stat(second.dir), Deno.errors.NotFound);
  });
});

Deno.test("DataCache.put() skips blocks while too many writes are in flight", async () => {
  await withDir(async (open) => {
    const cache = await open({ maxBytes: 256 * MiB });
    const block = pattern(MiB, 3);
    // Not awaited one by one: a disk slower than the network.
    await Promise.all(Array.from({ length: 80 }, (_, i) => cache.put(OBJ, i, block)));
    const s = cache.stats();
    assert.ok(s.skippedWrites >= 16, `skipped ${s.skippedWrites}`);
    assert.equal(s.writes + s.skippedWrites, 80);
    // Once the writes land, new blocks are accepted again.
    await cache.put(OBJ, 100, block);
    assert.deepEqual(await cache.get(OBJ, 100), block);
    await cache.close();
  });
});

async function setupObject(size: number) {
  const client = new RecordingClient();
  await client.createBucket("bucket");
  const data = pattern(size, 5);
  const { etag } = await client.putObject("bucket", "obj", data);
  /** Options of a reader of this object through `cache`. */
  const readerOptions = (
    partSize: number,
    budget: MemoryBudget,
    cache: DataCache,
  ): ReaderOptions => ({
    client,
    bucket: "bucket",
    key: "obj",
    etag,
    size,
    partSize,
    budget,
    cache,
  });
  return { client, data, readerOptions };
}

async function readAll(
  r: { read(o: number, s: number): Promise<Uint8Array> },
  size: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let off = 0; off < size; off += 128 * KiB) out.set(await r.read(off, 128 * KiB), off);
  return out;
}

Deno.test("createReader() with a cache serves a second read without S3 requests", async () => {
  await withDir(async (open) => {
    const size = 10 * MiB + 1234;
    const { client, data, readerOptions } = await setupObject(size);
    const cache = await open({ maxBytes: 64 * MiB });
    const budget = new MemoryBudget(64 * MiB);
    const opts = readerOptions(4 * MiB, budget, cache);
    const first = createReader(opts);
    assert.deepEqual(await readAll(first, size), data);
    first.close();
    // Every block was handed to the cache before its read returned: let the writes land.
    await cache.idle();
    assert.equal(cache.stats().blocks, 11);
    const before = client.gets.length;
    const second = createReader(opts);
    assert.deepEqual(await readAll(second, size), data);
    assert.equal(client.gets.length, before, "the cached read went to S3");
    // A random read is served from the cache too.
    assert.deepEqual(
      await second.read(5 * MiB + 77, 4096),
      data.subarray(5 * MiB + 77, 5 * MiB + 77 + 4096),
    );
    assert.equal(client.gets.length, before);
    second.close();
    assert.equal(budget.reserved, 0);
    await cache.close();
  });
});

Deno.test("createReader() refetches only the block the cache finds corrupt", async () => {
  await withDir(async (open) => {
    const size = 4 * MiB;
    const { client, data, readerOptions } = await setupObject(size);
    const cache = await open({ maxBytes: 64 * MiB });
    const budget = new MemoryBudget(64 * MiB);
    const opts = readerOptions(4 * MiB, budget, cache);
    const first = createReader(opts);
    assert.deepEqual(await readAll(first, size), data);
    first.close();
    await cache.idle();
    assert.equal(cache.stats().blocks, 4);
    // Flip the last data byte of one block file.
    const [victim] = await blockFiles(cache.dir);
    const bytes = await Deno.readFile(victim!);
    bytes[bytes.length - 1]! ^= 1;
    await Deno.writeFile(victim!, bytes);
    const before = client.gets.length;
    const second = createReader(opts);
    assert.deepEqual(await readAll(second, size), data);
    const refetched = client.gets.slice(before);
    assert.equal(refetched.length, 1);
    assert.equal(refetched[0]!.end - refetched[0]!.start, MiB);
    assert.equal(cache.stats().corrupt, 1);
    second.close();
    await cache.close();
  });
});

Deno.test("createReader() with a small evicting cache returns the right bytes for any reads", async () => {
  const fc = (await import("fast-check")).default;
  await withDir(async (open) => {
    const size = 2 * MiB + 999;
    const { data, readerOptions } = await setupObject(size);
    const cache = await open({ maxBytes: 512 * KiB, blockSize: 64 * KiB });
    const read = fc.record({
      offset: fc.integer({ min: 0, max: size }),
      size: fc.integer({ min: 0, max: 400_000 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(read, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 15 }),
        fc.constantFrom(64 * KiB, 100 * KiB, 256 * KiB),
        async (groups, partSize) => {
          const budget = new MemoryBudget(4 * MiB);
          const r = createReader(readerOptions(partSize, budget, cache));
          for (const group of groups) {
            const got = await Promise.all(group.map((g) => r.read(g.offset, g.size)));
            got.forEach((b, i) => {
              const { offset, size: n } = group[i]!;
              assertBytes(b, data.subarray(offset, offset + n), `read ${offset}+${n}`);
            });
          }
          r.close();
          assert.equal(budget.reserved, 0);
        },
      ),
      { numRuns: 60 },
    );
    assert.ok(cache.stats().bytes <= 512 * KiB);
    // Whether the random reads above hit depends on how fast the background
    // writes land; a re-read once the cache is idle must hit.
    const hits = cache.stats().hits;
    const first = createReader(readerOptions(64 * KiB, new MemoryBudget(4 * MiB), cache));
    await first.read(0, 128 * KiB);
    first.close();
    await cache.idle();
    const again = createReader(readerOptions(64 * KiB, new MemoryBudget(4 * MiB), cache));
    assertBytes(await again.read(0, 128 * KiB), data.subarray(0, 128 * KiB), "re-read");
    again.close();
    assert.ok(cache.stats().hits > hits, "a re-read after the cache wrote its blocks hits");
    await cache.close();
  });
});
