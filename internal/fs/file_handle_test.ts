// Open files, through S3FileSystem: the writers' memory, large writes, unmount, the data cache.
import assert from "node:assert/strict";
import { O_WRONLY, ROOT_INO, S_IFREG } from "./api.ts";
import {
  BUCKET,
  ctx,
  dec,
  enc,
  Errno,
  errnoOf,
  mount,
  parentOf,
  put,
  readFile,
  writeFile,
} from "./testing.ts";
import { createDataCache } from "./prefetch/mod.ts";

Deno.test("destroy() completes closed-but-deferred uploads and aborts open ones", async () => {
  const { fs, client } = await mount({ writePartSize: 4 });
  const a = await fs.mknod(ctx(), ROOT_INO, "a", S_IFREG | 0o644, 0);
  const ah = await fs.open(ctx(1), a.ino, O_WRONLY);
  await fs.write(ctx(1), a.ino, ah.fh, 0, enc("closed"));
  await fs.flush(ctx(2), a.ino, ah.fh); // deferred
  const b = await fs.mknod(ctx(), ROOT_INO, "b", S_IFREG | 0o644, 0);
  const bh = await fs.open(ctx(1), b.ino, O_WRONLY);
  await fs.write(ctx(1), b.ino, bh.fh, 0, enc("still open"));
  await fs.destroy();
  assert.equal(dec(client.peek(BUCKET, "a")!), "closed");
  assert.equal(client.peek(BUCKET, "b"), undefined);
  assert.deepEqual(client.pendingUploads(), []);
});

Deno.test("S24 open() for writing has no cap: many files open at once each get their object", async () => {
  const mib = 1024 * 1024;
  const { fs, client } = await mount({
    maxMemory: 100 * mib,
    writePartSize: 8 * mib,
    readPartSize: 8 * mib,
  });
  const handles = [];
  for (let i = 0; i < 50; i++) {
    const e = await fs.mknod(ctx(), ROOT_INO, `f${i}`, S_IFREG | 0o644, 0);
    handles.push({ ino: e.ino, fh: (await fs.open(ctx(), e.ino, O_WRONLY)).fh });
  }
  for (const [i, h] of handles.entries()) await fs.write(ctx(), h.ino, h.fh, 0, enc(`f${i}`));
  for (const h of handles) {
    await fs.flush(ctx(), h.ino, h.fh);
    await fs.release(ctx(), h.ino, h.fh, 0);
  }
  for (let i = 0; i < 50; i++) assert.equal(dec(client.peek(BUCKET, `f${i}`)!), `f${i}`);
});

Deno.test("S24 past its first 64 KiB a writer waits for the writers' memory, and goes on once another writer's part is sent", async () => {
  const mib = 1024 * 1024;
  const { fs, client } = await mount({
    maxMemory: 100 * mib,
    writePartSize: 8 * mib,
    readPartSize: 8 * mib,
  });
  // Nothing is usable after the 128 MiB reserve: the writers' memory is two parts, 16 MiB.
  const gate = Promise.withResolvers<void>();
  client.setBeforeRequest((op) => op === "uploadPart" ? gate.promise : undefined);
  const a = await fs.mknod(ctx(), ROOT_INO, "a", S_IFREG | 0o644, 0);
  const ah = await fs.open(ctx(1), a.ino, O_WRONLY);
  // A fills a part, which goes out (held at the gate), and starts its next: 16 MiB reserved.
  await fs.write(ctx(1), a.ino, ah.fh, 0, new Uint8Array(8 * mib));
  await fs.write(ctx(1), a.ino, ah.fh, 8 * mib, enc("x"));
  const b = await fs.mknod(ctx(), ROOT_INO, "b", S_IFREG | 0o644, 0);
  const bh = await fs.open(ctx(2), b.ino, O_WRONLY);
  const bWrite = fs.write(ctx(2), b.ino, bh.fh, 0, new Uint8Array(128 * 1024).fill(7));
  const state = () =>
    Promise.race([
      bWrite.then(() => "done"),
      new Promise((r) => setTimeout(() => r("waiting"), 50)),
    ]);
  assert.equal(await state(), "waiting", "B needs a whole part and waits");
  gate.resolve();
  assert.equal(await state(), "done", "A's part is sent: B goes on");
  for (const [h, ino] of [[ah.fh, a.ino], [bh.fh, b.ino]]) {
    await fs.flush(ctx(), ino, h);
    await fs.release(ctx(), ino, h, 0);
  }
  assert.equal(client.peek(BUCKET, "a")!.byteLength, 8 * mib + 1);
  assert.deepEqual(client.peek(BUCKET, "b"), new Uint8Array(128 * 1024).fill(7));
});

Deno.test("write() with a large file keeps parts flowing and reads back intact", async () => {
  const { fs, client } = await mount({ writePartSize: 64 * 1024 });
  const data = new Uint8Array(1024 * 1024 + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  await writeFile(fs, "bin", data, 100_000);
  const stored = client.peek(BUCKET, "bin")!;
  assert.equal(stored.byteLength, data.byteLength);
  assert.deepEqual(stored, data);
  const [parent, name] = await parentOf(fs, "bin");
  const e = await fs.lookup(ctx(), parent, name);
  assert.equal(e.attr.size, data.byteLength);
});

Deno.test("S3FileSystem reads through the data cache its caller gives and closes it at destroy()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "s3csi-fs-cache-test-" });
  const cache = await createDataCache({ dir, maxBytes: 16 * 1024 * 1024 });
  try {
    const { fs, client } = await mount({}, undefined, { cache });
    await put(client, "f", "cached bytes");
    assert.equal(await readFile(fs, "f"), "cached bytes");
    await cache.idle();
    assert.equal(cache.stats().blocks, 1);
    client.resetCounts();
    assert.equal(await readFile(fs, "f"), "cached bytes");
    assert.equal(client.requestCount("getObject"), 0, "the second read went to S3");
    await fs.destroy();
    await assert.rejects(Deno.stat(cache.dir), Deno.errors.NotFound);
  } finally {
    await cache.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flush() after a part failed in the background answers once the upload is aborted, and the new file is gone", async () => {
  const { fs, client } = await mount({ writePartSize: 4 });
  const gates: (() => void)[] = [];
  client.setBeforeRequest((op) =>
    op === "abortMultipartUpload" ? new Promise<void>((r) => gates.push(r)) : undefined
  );
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  client.failNext("uploadPart", "ServerError");
  await fs.write(ctx(), f.ino, fh, 0, enc("0123")); // a full part, which fails in the background
  while (gates.length === 0) await new Promise((r) => setTimeout(r, 0));
  let settled = false;
  const flushed = errnoOf(fs.flush(ctx(), f.ino, fh)).finally(() => settled = true);
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, false, "close returned while the abort was in flight");
  gates.shift()!();
  assert.equal(await flushed, Errno.EIO);
  assert.deepEqual(client.pendingUploads(), []);
  await fs.release(ctx(), f.ino, fh, 0);
  fs.forget(f.ino, 1);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "f")), Errno.ENOENT);
  assert.deepEqual(client.keys(BUCKET), []);
});
