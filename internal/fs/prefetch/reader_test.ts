import assert from "node:assert/strict";
import { isS3Error } from "../../s3/object_client.ts";
import { BufferPool, createReader, MemoryBudget, type ReaderOptions } from "./mod.ts";
import { assertBytes, pattern, RecordingClient, tick } from "./_recording_client.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = "bucket";

async function setup(size: number, seed = 1) {
  const client = new RecordingClient();
  await client.createBucket(BUCKET);
  const data = pattern(size, seed);
  const { etag } = await client.putObject(BUCKET, "obj", data);
  return { client, data, etag };
}

function open(
  client: RecordingClient,
  etag: string,
  size: number,
  extra: Partial<ReaderOptions> = {},
) {
  return createReader({
    client,
    bucket: BUCKET,
    key: "obj",
    etag,
    size,
    partSize: extra.partSize ?? 256 * KiB,
    budget: extra.budget ?? new MemoryBudget(256 * MiB),
    ...extra,
  });
}

async function readAll(
  reader: { read(o: number, s: number): Promise<Uint8Array> },
  size: number,
  chunk: number,
) {
  const out = new Uint8Array(size);
  let off = 0;
  for (;;) {
    const b = await reader.read(off, chunk);
    if (b.length === 0) break;
    out.set(b, off);
    off += b.length;
    assert.ok(off <= size, "read past the object size");
  }
  assert.equal(off, size);
  return out;
}

Deno.test("read() returns the object's bytes for sequential reads of many sizes", async () => {
  const part = 256 * KiB;
  const sizes = [0, 1, part - 1, part, part + 1, 3 * part + 17, 9 * part + 12345, 5 * MiB + 3];
  for (const size of sizes) {
    for (const chunk of [128 * KiB, 100_000, MiB]) {
      const { client, data, etag } = await setup(size, size + chunk);
      const budget = new MemoryBudget(64 * MiB);
      const reader = open(client, etag, size, { budget });
      const got = await readAll(reader, size, chunk);
      assert.deepEqual(got, data, `size ${size}, chunk ${chunk}`);
      for (const g of client.gets) assert.equal(g.ifMatch, etag);
      reader.close();
      assert.equal(budget.reserved, 0);
    }
  }
});

Deno.test("read() fetches every byte of a sequential read exactly once", async () => {
  const size = 20 * MiB + 777;
  const { client, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  await readAll(reader, size, 128 * KiB);
  const ranges = client.gets.map((g) => [g.start, g.end]).sort((a, b) => a[0]! - b[0]!);
  let expected = 0;
  for (const [start, end] of ranges) {
    assert.equal(start, expected, "ranges overlap or leave a gap");
    assert.ok(end! - start! <= MiB, "a GET is larger than the part size");
    expected = end!;
  }
  assert.equal(expected, size);
  reader.close();
});

Deno.test("read() starts a sequential stream with a 1 MiB + 128 KiB request", async () => {
  const size = 64 * MiB;
  const { client, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: 8 * MiB });
  const b = await reader.read(0, 4096);
  assert.equal(b.length, 4096);
  assert.deepEqual(client.gets.map((g) => [g.start, g.end]), [[0, MiB + 128 * KiB]]);
  reader.close();
});

Deno.test("read() grows the prefetch window while reading sequentially", async () => {
  const size = 96 * MiB;
  const { client, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB, maxWindow: 32 * MiB });
  // For each GET, how far ahead of the bytes consumed so far it reaches.
  const leads: number[] = [];
  let consumed = 0;
  let seen = 0;
  for (let off = 0; off < size; off += 128 * KiB) {
    const b = await reader.read(off, 128 * KiB);
    consumed = off + b.length;
    for (; seen < client.gets.length; seen++) leads.push(client.gets[seen]!.end - consumed);
  }
  assert.ok(leads[0]! <= MiB + 128 * KiB, `first lead ${leads[0]}`);
  const early = Math.max(...leads.slice(0, 4));
  const late = Math.max(...leads.slice(-20));
  assert.ok(early <= 4 * MiB, `early lead ${early}`);
  assert.ok(late >= 16 * MiB, `late lead ${late}: the window did not grow`);
  assert.ok(late <= 32 * MiB + 2 * MiB, `late lead ${late}: beyond the maximum window`);
  reader.close();
});

Deno.test("read() keeps at most maxConcurrency prefetch GETs in flight", async () => {
  const size = 64 * MiB;
  const { client, data, etag } = await setup(size);
  client.delayMs = 1;
  const reader = open(client, etag, size, { partSize: MiB, maxConcurrency: 3 });
  assert.deepEqual(await readAll(reader, size, MiB), data);
  assert.ok(client.maxInFlight <= 4, `max in flight ${client.maxInFlight}`);
  assert.ok(client.maxInFlight >= 2, `max in flight ${client.maxInFlight}: no parallelism`);
  reader.close();
});

Deno.test("read() serves concurrent out-of-order reads correctly", async () => {
  const size = 12 * MiB + 5;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  await reader.read(0, 128 * KiB);
  client.hold();
  const chunk = 128 * KiB;
  const offsets: number[] = [];
  for (let off = chunk; off < 4 * MiB; off += chunk) offsets.push(off);
  // The kernel's readahead: several requests at once, in a shuffled order.
  const order = [...offsets].sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13));
  const pending = order.map((off) => reader.read(off, chunk).then((b) => ({ off, b })));
  await tick();
  client.release();
  for (const { off, b } of await Promise.all(pending)) {
    assert.deepEqual(b, data.subarray(off, off + chunk), `offset ${off}`);
  }
  assert.deepEqual(await readAll(reader, size, 200_000), data);
  reader.close();
});

Deno.test("read() serves reads spanning two parts while both are in flight", async () => {
  const size = 4 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: 256 * KiB });
  client.hold();
  const p = reader.read(200 * KiB, 100 * KiB);
  await tick();
  assert.ok(client.parked > 0);
  client.release();
  assert.deepEqual(await p, data.subarray(200 * KiB, 300 * KiB));
  reader.close();
});

Deno.test("read() fetches only small ranges for random reads", async () => {
  const size = 64 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: 8 * MiB });
  const offsets = [5 * MiB + 3, 40 * MiB, 17 * MiB + 4095, 2 * MiB, 63 * MiB + 100, 30 * MiB];
  for (const off of offsets) {
    assert.deepEqual(await reader.read(off, 4096), data.subarray(off, off + 4096));
  }
  assert.equal(client.gets.length, offsets.length);
  for (const g of client.gets) assert.ok(g.end - g.start <= 128 * KiB, `GET of ${g.end - g.start}`);
  reader.close();
});

Deno.test("read() turns sequential after a random read that the next read continues", async () => {
  const size = 64 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  let off = 10 * MiB;
  await reader.read(off, 64 * KiB);
  assert.deepEqual(client.gets.map((g) => g.end - g.start), [128 * KiB]);
  off += 64 * KiB;
  for (; off < 20 * MiB; off += 64 * KiB) {
    assert.deepEqual(await reader.read(off, 64 * KiB), data.subarray(off, off + 64 * KiB));
  }
  const big = client.gets.filter((g) => g.end - g.start >= 512 * KiB);
  assert.ok(big.length >= 5, `only ${big.length} large GETs: no prefetch`);
  reader.close();
});

Deno.test("read() serves a small backward seek from kept data", async () => {
  const size = 16 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  for (let off = 0; off < 6 * MiB; off += 128 * KiB) await reader.read(off, 128 * KiB);
  const before = client.gets.length;
  const back = 6 * MiB - 700 * KiB;
  assert.deepEqual(await reader.read(back, 128 * KiB), data.subarray(back, back + 128 * KiB));
  assert.equal(client.gets.length, before);
  reader.close();
});

Deno.test("read() waits for in-flight data on a forward seek within the window", async () => {
  const size = 32 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  for (let off = 0; off < 4 * MiB; off += 128 * KiB) await reader.read(off, 128 * KiB);
  const fetched = Math.max(...client.gets.map((g) => g.end));
  const before = client.gets.length;
  const target = fetched - 300 * KiB;
  assert.ok(target > 4 * MiB + 128 * KiB);
  assert.deepEqual(await reader.read(target, 128 * KiB), data.subarray(target, target + 128 * KiB));
  const newRanges = client.gets.slice(before);
  assert.ok(newRanges.every((g) => g.start >= fetched), "the seek refetched data in flight");
  reader.close();
});

Deno.test("read() serves a late read behind the stream without restarting it", async () => {
  const size = 32 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  for (let off = 0; off < 8 * MiB; off += 128 * KiB) await reader.read(off, 128 * KiB);
  const before = client.gets.length;
  const late = 2 * MiB;
  assert.deepEqual(await reader.read(late, 128 * KiB), data.subarray(late, late + 128 * KiB));
  assert.equal(reader.stats().sideReads, 1);
  // The stream goes on where it was: no refetch of data it already holds.
  assert.deepEqual(
    await reader.read(8 * MiB, 128 * KiB),
    data.subarray(8 * MiB, 8 * MiB + 128 * KiB),
  );
  const extra = client.gets.slice(before).filter((g) => g.start < 8 * MiB && g.start >= 3 * MiB);
  assert.equal(extra.length, 0);
  reader.close();
});

Deno.test("read() returns short or empty arrays at and past the end of the object", async () => {
  const size = 1000;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size);
  assert.deepEqual(await reader.read(990, 100), data.subarray(990));
  assert.equal((await reader.read(1000, 100)).length, 0);
  assert.equal((await reader.read(5000, 100)).length, 0);
  assert.equal((await reader.read(10, 0)).length, 0);
  reader.close();
});

Deno.test("read() fails with PreconditionFailed after a remote overwrite, never mixing bytes", async () => {
  const size = 16 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  let off = 0;
  for (; off < 2 * MiB; off += 128 * KiB) {
    assert.deepEqual(await reader.read(off, 128 * KiB), data.subarray(off, off + 128 * KiB));
  }
  await client.putObjectOutOfBand(BUCKET, "obj", pattern(size, 99));
  let error: unknown;
  for (; off < size; off += 128 * KiB) {
    try {
      const b = await reader.read(off, 128 * KiB);
      assert.deepEqual(b, data.subarray(off, off + 128 * KiB), `mixed bytes at ${off}`);
    } catch (err) {
      error = err;
      break;
    }
  }
  assert.ok(isS3Error(error, "PreconditionFailed"), `got ${error}`);
  // The stream was reset; retrying still fails, as the object is still different.
  await assert.rejects(reader.read(off, 128 * KiB), (e) => isS3Error(e, "PreconditionFailed"));
  reader.close();
});

Deno.test("read() resets after an error and the next read succeeds", async () => {
  const size = 8 * MiB;
  const { client, data, etag } = await setup(size);
  const budget = new MemoryBudget(64 * MiB);
  const reader = open(client, etag, size, { partSize: MiB, budget });
  client.failNext("getObject", "ServerError");
  await assert.rejects(reader.read(0, 128 * KiB), (e) => isS3Error(e, "ServerError"));
  assert.deepEqual(await reader.read(0, 128 * KiB), data.subarray(0, 128 * KiB));
  assert.deepEqual(await readAll(reader, size, 128 * KiB), data);
  reader.close();
  assert.equal(budget.reserved, 0);
});

Deno.test("close() cancels GETs in flight, fails waiting reads and releases memory", async () => {
  const size = 32 * MiB;
  const { client, etag } = await setup(size);
  const budget = new MemoryBudget(64 * MiB);
  const reader = open(client, etag, size, { partSize: MiB, budget });
  client.hold();
  const pending = reader.read(0, 128 * KiB);
  await tick();
  assert.ok(budget.reserved > 0);
  reader.close();
  await assert.rejects(pending, (e) => isS3Error(e, "Aborted"));
  assert.equal(budget.reserved, 0);
  assert.equal(budget.readers, 0);
  await tick();
  assert.ok(client.gets.every((g) => g.aborted), "a GET was not aborted");
  await assert.rejects(reader.read(0, 1), (e) => isS3Error(e, "Aborted"));
});

Deno.test("read() rejects when its own signal fires, leaving the stream usable", async () => {
  const size = 4 * MiB;
  const { client, data, etag } = await setup(size);
  const reader = open(client, etag, size, { partSize: MiB });
  client.hold();
  const ac = new AbortController();
  const pending = reader.read(0, 128 * KiB, ac.signal);
  await tick();
  ac.abort();
  await assert.rejects(pending, (e) => isS3Error(e, "Aborted"));
  client.release();
  assert.deepEqual(await readAll(reader, size, 128 * KiB), data);
  reader.close();
});

Deno.test("MemoryBudget bounds four concurrent sequential readers and all is released after close", async () => {
  const size = 24 * MiB + 99;
  const client = new RecordingClient();
  client.delayMs = 1;
  await client.createBucket(BUCKET);
  const objects = await Promise.all([0, 1, 2, 3].map(async (i) => {
    const data = pattern(size, 100 + i);
    const { etag } = await client.putObject(BUCKET, `obj${i}`, data);
    return { data, etag, key: `obj${i}` };
  }));
  const partSize = MiB;
  const budget = new MemoryBudget(6 * MiB);
  const readers = objects.map((o) =>
    createReader({
      client,
      bucket: BUCKET,
      key: o.key,
      etag: o.etag,
      size,
      partSize,
      budget,
    })
  );
  const results = await Promise.all(readers.map((r) => readAll(r, size, 128 * KiB)));
  results.forEach((got, i) => assert.deepEqual(got, objects[i]!.data));
  assert.ok(budget.peak <= budget.maxBytes + partSize, `peak ${budget.peak}`);
  assert.ok(budget.peak > MiB, "nothing was prefetched");
  for (const r of readers) r.close();
  assert.equal(budget.reserved, 0);
});

Deno.test("read() makes progress when the budget is already exhausted", async () => {
  const size = 8 * MiB;
  const { client, data, etag } = await setup(size);
  const budget = new MemoryBudget(MiB);
  budget.forceReserve(MiB); // someone else holds everything
  const reader = open(client, etag, size, { partSize: MiB, budget });
  assert.deepEqual(await readAll(reader, size, 128 * KiB), data);
  assert.ok(budget.peak <= 2 * MiB + 128 * KiB, `peak ${budget.peak}`);
  reader.close();
  assert.equal(budget.reserved, MiB);
});

Deno.test("read() returns the right bytes for any mix of sequential, random and concurrent reads", async () => {
  const fc = (await import("fast-check")).default;
  const size = 3 * MiB + 333;
  const { client, data, etag } = await setup(size, 7);
  const read = fc.record({
    offset: fc.oneof(fc.integer({ min: 0, max: size + 10 }), fc.constant(-1)), // -1: continue
    size: fc.oneof(fc.constantFrom(4096, 128 * KiB, MiB), fc.integer({ min: 0, max: 300_000 })),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(read, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 25 }),
      fc.constantFrom(64 * KiB, 256 * KiB, MiB),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(MiB, 4 * MiB, 64 * MiB),
      async (groups, partSize, maxConcurrency, budgetBytes) => {
        const budget = new MemoryBudget(budgetBytes);
        const reader = open(client, etag, size, { partSize, maxConcurrency, budget });
        let next = 0;
        let maxGroup = 0;
        for (const group of groups) {
          maxGroup = Math.max(maxGroup, group.reduce((n, r) => n + r.size + 128 * KiB, 0));
          // Each group's reads are in flight together, like the kernel's readahead.
          const pending = group.map((r) => {
            const offset = r.offset < 0 ? next : r.offset;
            next = offset + r.size;
            return reader.read(offset, r.size).then((b) => ({ offset, size: r.size, b }));
          });
          for (const { offset, size: n, b } of await Promise.all(pending)) {
            const want = data.subarray(Math.min(offset, size), Math.min(offset + n, size));
            assertBytes(b, want, `read ${offset}+${n}`);
          }
        }
        reader.close();
        assert.equal(budget.reserved, 0);
        // Over the budget only by what reads needed right then.
        const bound = budgetBytes + partSize + 2 * maxGroup;
        assert.ok(budget.peak <= bound, `peak ${budget.peak} over ${bound}`);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("read() keeps the parts a large read starts in when it passes forced parts", async () => {
  // A 1 MiB read starting inside a part forced over an exhausted budget must
  // keep that part until it is served: dropping it early returns zeros.
  const size = 3 * MiB + 333;
  const { client, data, etag } = await setup(size, 7);
  const budget = new MemoryBudget(MiB);
  const reader = open(client, etag, size, { partSize: MiB, maxConcurrency: 2, budget });
  const first = [[798259, MiB], [1846835, 56442], [1903277, MiB], [252559, 128 * KiB]];
  const got = await Promise.all(first.map(([o, n]) => reader.read(o!, n!)));
  got.forEach((b, i) => assertBytes(b, data.subarray(first[i]![0], first[i]![0]! + first[i]![1]!)));
  assertBytes(await reader.read(2192069, MiB), data.subarray(2192069, 2192069 + MiB));
  reader.close();
  assert.equal(budget.reserved, 0);
});

Deno.test("MemoryBudget counts only streaming readers toward the fair share", async () => {
  const size = 16 * MiB;
  const { client, etag } = await setup(size);
  const budget = new MemoryBudget(64 * MiB);
  const idle = open(client, etag, size, { budget });
  const random = open(client, etag, size, { budget });
  const sequential = open(client, etag, size, { budget });
  await random.read(5 * MiB, 4096);
  for (let off = 0; off < 2 * MiB; off += 128 * KiB) await sequential.read(off, 128 * KiB);
  assert.equal(budget.readers, 1);
  sequential.close();
  assert.equal(budget.readers, 0);
  idle.close();
  random.close();
});

Deno.test("read() prefetches in smaller GETs when the budget cannot hold a whole part", async () => {
  const size = 64 * MiB;
  const { client, data, etag } = await setup(size);
  const budget = new MemoryBudget(3 * MiB);
  const reader = open(client, etag, size, { partSize: 8 * MiB, budget });
  assertBytes(await readAll(reader, size, 128 * KiB), data);
  const small = client.gets.filter((g) => g.end - g.start <= 128 * KiB).length;
  assert.ok(small <= client.gets.length / 4, `${small} of ${client.gets.length} GETs are tiny`);
  assert.ok(budget.peak <= 3 * MiB + 128 * KiB, `peak ${budget.peak}`);
  reader.close();
});

Deno.test("MemoryBudget takes back the prefetched data of an idle reader for an active one", async () => {
  const size = 64 * MiB;
  const { client, data, etag } = await setup(size);
  // Every other reader counts as idle, and sweeps are not rate-limited.
  const budget = new MemoryBudget(16 * MiB, { idleMs: -1, reclaimIntervalMs: 0 });
  const idle = open(client, etag, size, { partSize: MiB, budget });
  for (let off = 0; off < 8 * MiB; off += 128 * KiB) await idle.read(off, 128 * KiB);
  assert.ok(idle.stats().reserved >= 4 * MiB, `idle holds ${idle.stats().reserved}`);
  const active = open(client, etag, size, { partSize: MiB, budget });
  for (let off = 0; off < 32 * MiB; off += 128 * KiB) {
    assertBytes(await active.read(off, 128 * KiB), data.subarray(off, off + 128 * KiB));
  }
  assert.ok(idle.stats().reclaims >= 1, "the idle reader kept its memory");
  assert.ok(budget.stats().reclaimSweeps >= 1);
  // The idle reader carries on where it stopped.
  assertBytes(await idle.read(8 * MiB, 128 * KiB), data.subarray(8 * MiB, 8 * MiB + 128 * KiB));
  idle.close();
  active.close();
  assert.equal(budget.reserved, 0);
});

/** Reads [offset, offset + n) and checks the bytes before yielding, as the FUSE session uses them. */
function readChecked(
  reader: { read(o: number, s: number): Promise<Uint8Array> },
  data: Uint8Array,
  offset: number,
  n: number,
): Promise<number> {
  return reader.read(offset, n).then((b) => {
    const want = data.subarray(Math.min(offset, data.length), Math.min(offset + n, data.length));
    assertBytes(b, want, `read ${offset}+${n}`);
    return b.length;
  });
}

Deno.test("read() with a buffer pool reuses the buffers of consumed parts and returns the right bytes", async () => {
  const size = 24 * MiB + 77;
  const { client, data, etag } = await setup(size, 3);
  const pool = new BufferPool();
  // A budget of a few parts: in the steady state each new GET follows a consumed part.
  const budget = new MemoryBudget(4 * MiB);
  const reader = open(client, etag, size, { partSize: MiB, pool, budget });
  for (let off = 0; off < size;) {
    // The kernel's readahead: two requests in flight.
    const [a, b] = await Promise.all([
      readChecked(reader, data, off, 128 * KiB),
      readChecked(reader, data, off + 128 * KiB, 128 * KiB),
    ]);
    off += a + b;
    if (a + b === 0) break;
    await tick();
  }
  reader.close();
  assert.equal(budget.reserved, 0);
  const { hits, misses } = pool.stats();
  assert.ok(hits >= 10, `pool hits ${hits}, misses ${misses}`);
});

Deno.test("read() with a buffer pool returns the right bytes for any mix of sequential, random and concurrent reads", async () => {
  const fc = (await import("fast-check")).default;
  const size = 3 * MiB + 333;
  const { client, data, etag } = await setup(size, 11);
  const read = fc.record({
    offset: fc.oneof(fc.integer({ min: 0, max: size + 10 }), fc.constant(-1)), // -1: continue
    size: fc.oneof(fc.constantFrom(4096, 128 * KiB, MiB), fc.integer({ min: 0, max: 300_000 })),
  });
  const pool = new BufferPool(8, 64 * MiB, 0); // These parts are small: pool them all.
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(read, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 25 }),
      fc.constantFrom(64 * KiB, 256 * KiB),
      fc.integer({ min: 1, max: 4 }),
      async (groups, partSize, maxConcurrency) => {
        const budget = new MemoryBudget(MiB);
        const reader = open(client, etag, size, { partSize, maxConcurrency, budget, pool });
        let next = 0;
        for (const group of groups) {
          await Promise.all(group.map((r) => {
            const offset = r.offset < 0 ? next : r.offset;
            next = offset + r.size;
            return readChecked(reader, data, offset, r.size);
          }));
          await tick();
        }
        reader.close();
        assert.equal(budget.reserved, 0);
      },
    ),
    { numRuns: 100 },
  );
  assert.ok(pool.stats().hits > 0);
});
