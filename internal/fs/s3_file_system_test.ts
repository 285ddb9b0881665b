import assert from "node:assert/strict";
import {
  type DirEntry,
  O_DIRECT,
  O_DSYNC,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  ROOT_INO,
  S_IFDIR,
  S_IFREG,
} from "./api.ts";
import {
  BUCKET,
  ctx,
  dec,
  enc,
  Errno,
  errnoOf,
  listDir,
  mount,
  names,
  overwriteFile,
  put,
  readFile,
  resolve,
  writeFile,
} from "./testing.ts";
import { MemoryObjectClient } from "../s3/memory_object_client.ts";

// ---- Tree -------------------------------------------------------------------

Deno.test("S1 lookup() and readdir() show implicit directories and zero-byte markers", async () => {
  const { fs, client } = await mount();
  await put(client, "a/b/c.txt", "hello");
  await put(client, "m/");
  assert.deepEqual(names(await listDir(fs, "")), ["a/", "m/"]);
  assert.deepEqual(names(await listDir(fs, "a")), ["b/"]);
  assert.deepEqual(names(await listDir(fs, "a/b")), ["c.txt"]);
  assert.deepEqual(names(await listDir(fs, "m")), []);
  const ino = await resolve(fs, "a/b/c.txt");
  const { attr } = await fs.getattr(ctx(), ino);
  assert.equal(attr.size, 5);
  assert.equal(attr.mode, S_IFREG | 0o644);
  const m = await fs.lookup(ctx(), ROOT_INO, "m");
  assert.equal(m.attr.mode, S_IFDIR | 0o755);
});

Deno.test("S2 lookup() lets a directory shadow a file of the same name until it empties", async () => {
  const { fs, client } = await mount();
  await put(client, "blue", "file");
  await put(client, "blue/image.jpg", "img");
  assert.deepEqual(names(await listDir(fs, "")), ["blue/"]);
  assert.equal((await fs.lookup(ctx(), ROOT_INO, "blue")).attr.mode & S_IFDIR, S_IFDIR);
  await client.deleteObject(BUCKET, "blue/image.jpg");
  assert.deepEqual(names(await listDir(fs, "")), ["blue"]);
  const e = await fs.lookup(ctx(), ROOT_INO, "blue");
  assert.equal(e.attr.mode, S_IFREG | 0o644);
  assert.equal(await readFile(fs, "blue"), "file");
});

Deno.test("S3 readdir() hides keys that cannot be file names", async () => {
  const { fs, client } = await mount();
  for (const k of ["x/./y", "x/../y", "x//y", "x/.", "z", "/lead", "n\0ul"]) await put(client, k);
  assert.deepEqual(names(await listDir(fs, "")), ["x/", "z"]);
  assert.deepEqual(names(await listDir(fs, "x")), []);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "n\0ul")), Errno.ENOENT);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "a".repeat(256))), Errno.ENAMETOOLONG);
});

Deno.test("S4 lookup() prefers a local mkdir to a remote file, and a remote directory to a file being written", async () => {
  const { fs, client } = await mount();
  await fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0);
  await put(client, "d", "remote file");
  assert.equal((await fs.lookup(ctx(), ROOT_INO, "d")).attr.mode & S_IFDIR, S_IFDIR);
  assert.deepEqual(names(await listDir(fs, "")), ["d/"]);

  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  await fs.write(ctx(), f.ino, fh, 0, enc("local"));
  await put(client, "f/x", "remote");
  assert.deepEqual(names(await listDir(fs, "")), ["d/", "f/"]);
  assert.equal((await fs.lookup(ctx(), ROOT_INO, "f")).attr.mode & S_IFDIR, S_IFDIR);
  await fs.flush(ctx(), f.ino, fh);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.equal(dec(client.peek(BUCKET, "f")!), "local");
  assert.deepEqual(names(await listDir(fs, "")), ["d/", "f/"]);
});

Deno.test("S5 S3FileSystem with a prefix shows only the keys below it", async () => {
  const client = new MemoryObjectClient({ minPartSize: 1 });
  await client.createBucket(BUCKET);
  const { fs } = await mount({ prefix: "p/" }, client);
  await put(client, "p/a", "1");
  await put(client, "p/q/b", "2");
  await put(client, "other", "3");
  await put(client, "p/", "");
  assert.deepEqual(names(await listDir(fs, "")), ["a", "q/"]);
  await writeFile(fs, "q/new", "n");
  assert.equal(dec(client.peek(BUCKET, "p/q/new")!), "n");
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "other")), Errno.ENOENT);
});

// ---- Metadata and caching -----------------------------------------------------

Deno.test("S6 minimal TTL: getattr after readdirplus sends no HeadObject; open re-validates", async () => {
  const { fs, client } = await mount();
  for (let i = 0; i < 5; i++) await put(client, `f${i}`, "x".repeat(i));
  const { fh } = await fs.opendir(ctx(), ROOT_INO, 0);
  const got: DirEntry[] = [];
  await fs.readdir(ctx(), ROOT_INO, fh, 0, true, (e) => (got.push(e), true));
  await fs.releasedir(ctx(), ROOT_INO, fh);
  assert.equal(got.length, 7);
  const f3 = got.find((e) => e.name === "f3")!;
  assert.equal(f3.entry?.attrTtlMs, 1000);
  client.resetCounts();
  const { attr } = await fs.getattr(ctx(), f3.ino);
  assert.equal(attr.size, 3);
  assert.equal(client.requestCount(), 0);

  await put(client, "f3", "changed!");
  const opened = await fs.open(ctx(), f3.ino, O_RDONLY);
  assert.equal(client.requestCount("headObject"), 1);
  assert.equal(dec(await fs.read(ctx(), f3.ino, opened.fh, 0, 100)), "changed!");
  await fs.release(ctx(), f3.ino, opened.fh, 0);
});

Deno.test("S6 an open right after its lookup sends no HeadObject and re-pins to a changed object", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "first");
  const e = await fs.lookup(ctx(), ROOT_INO, "f");
  client.resetCounts();
  await put(client, "f", "changed!");
  const h = await fs.open(ctx(), e.ino, O_RDONLY);
  assert.equal(client.requestCount("headObject"), 0);
  assert.equal(dec(await fs.read(ctx(), e.ino, h.fh, 0, 100)), "changed!");
  assert.equal(client.requestCount("headObject"), 1, "the re-pin asked S3 once");
  await fs.release(ctx(), e.ino, h.fh, 0);

  // The lookup's stat serves one open: the next one asks S3.
  client.resetCounts();
  const again = await fs.open(ctx(), e.ino, O_RDONLY);
  assert.equal(client.requestCount("headObject"), 1);
  await fs.release(ctx(), e.ino, again.fh, 0);
});

Deno.test("S6 a handle that served bytes never re-pins, and a deleted object is ESTALE", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "01" + "x".repeat(3 << 20));
  const e = await fs.lookup(ctx(), ROOT_INO, "f");
  const h = await fs.open(ctx(), e.ino, O_RDONLY);
  assert.equal(dec(await fs.read(ctx(), e.ino, h.fh, 0, 2)), "01");
  await put(client, "f", "y".repeat(4 << 20));
  // Past the first GET's range: a new GET, pinned to the first version.
  assert.equal(await errnoOf(fs.read(ctx(), e.ino, h.fh, 3 << 20, 4)), Errno.ESTALE);
  await fs.release(ctx(), e.ino, h.fh, 0);

  const g = await fs.lookup(ctx(), ROOT_INO, "f");
  const h2 = await fs.open(ctx(), g.ino, O_RDONLY);
  await client.deleteObject(BUCKET, "f");
  assert.equal(await errnoOf(fs.read(ctx(), g.ino, h2.fh, 0, 4)), Errno.ESTALE);
  await fs.release(ctx(), g.ino, h2.fh, 0);
});

Deno.test("S7 seconds TTL serves lookups and negative lookups from cache; O_DIRECT re-validates", async () => {
  const { fs, client } = await mount({ metadataTtl: { kind: "seconds", s: 60 } });
  await put(client, "f", "one");
  const e = await fs.lookup(ctx(), ROOT_INO, "f");
  assert.equal(e.entryTtlMs, 60_000);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "missing")), Errno.ENOENT);
  client.resetCounts();
  await fs.lookup(ctx(), ROOT_INO, "f");
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "missing")), Errno.ENOENT);
  const cached = await fs.open(ctx(), e.ino, O_RDONLY);
  assert.equal(client.requestCount("headObject") + client.requestCount("listObjects"), 0);
  await fs.release(ctx(), e.ino, cached.fh, 0);

  await put(client, "f", "two!");
  const direct = await fs.open(ctx(), e.ino, O_RDONLY | O_DIRECT);
  assert.equal(direct.directIo, true);
  assert.equal(dec(await fs.read(ctx(), e.ino, direct.fh, 0, 10)), "two!");
  await fs.release(ctx(), e.ino, direct.fh, 0);
});

Deno.test("S8 lookup() replaces the inode when a file becomes a directory; getattr of the old one is ENOENT", async () => {
  const { fs, client } = await mount();
  await put(client, "k", "file");
  const before = await fs.lookup(ctx(), ROOT_INO, "k");
  await put(client, "k", "new content");
  const same = await fs.lookup(ctx(), ROOT_INO, "k");
  assert.equal(same.ino, before.ino);
  assert.equal(same.attr.size, 11);
  await client.deleteObject(BUCKET, "k");
  await put(client, "k/child", "c");
  const dir = await fs.lookup(ctx(), ROOT_INO, "k");
  assert.notEqual(dir.ino, before.ino);
  assert.equal(dir.attr.mode & S_IFDIR, S_IFDIR);
  assert.equal(await errnoOf(fs.getattr(ctx(), before.ino)), Errno.ENOENT);
});

// ---- Reading ------------------------------------------------------------------

Deno.test("S8 open() of an inode whose name went is ESTALE, so the kernel looks it up again", async () => {
  const { fs, client } = await mount();
  await put(client, "gone.txt", "x");
  const ino = await resolve(fs, "gone.txt");
  await client.deleteObject(BUCKET, "gone.txt");
  // The kernel's entry is still cached; a lookup tells the mount the name went.
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "gone.txt")), Errno.ENOENT);
  assert.equal(await errnoOf(fs.open(ctx(), ino, O_RDONLY)), Errno.ESTALE);
  assert.equal(await errnoOf(fs.open(ctx(), ino, O_WRONLY | O_TRUNC)), Errno.ESTALE);
});

Deno.test("S9 read() fails with ESTALE after a remote overwrite instead of mixing bytes", async () => {
  const { fs, client } = await mount();
  const size = 32 * 1024 * 1024;
  await client.putObject(BUCKET, "f", new Uint8Array(size).fill(0x41));
  const ino = await resolve(fs, "f");
  const { fh } = await fs.open(ctx(), ino, O_RDONLY);
  assert.equal(dec(await fs.read(ctx(), ino, fh, 0, 4)), "AAAA");
  await client.putObject(BUCKET, "f", new Uint8Array(size).fill(0x42));
  // Far from what was prefetched: a new GET, pinned with If-Match.
  assert.equal(await errnoOf(fs.read(ctx(), ino, fh, 20 * 1024 * 1024, 4)), Errno.ESTALE);
  // Data already fetched may still be served, but only the old bytes.
  try {
    const near = await fs.read(ctx(), ino, fh, 4, 4096);
    assert.equal(near.length, 4096);
    assert.ok(near.every((b) => b === 0x41));
  } catch (err) {
    assert.equal(await errnoOf(Promise.reject(err)), Errno.ESTALE);
  }
  await client.deleteObject(BUCKET, "f");
  assert.equal(await errnoOf(fs.read(ctx(), ino, fh, 24 * 1024 * 1024, 4)), Errno.ESTALE);
  await fs.release(ctx(), ino, fh, 0);
});

Deno.test("S10 open() for reading a file being written is EPERM; read() on a write handle is EBADF", async () => {
  const { fs } = await mount();
  const f = await fs.mknod(ctx(), ROOT_INO, "w", S_IFREG | 0o644, 0);
  assert.equal(await errnoOf(fs.open(ctx(), f.ino, O_RDONLY)), Errno.EPERM);
  const { fh } = await fs.open(ctx(), f.ino, O_RDWR);
  await fs.write(ctx(), f.ino, fh, 0, enc("data"));
  assert.equal(await errnoOf(fs.open(ctx(), f.ino, O_RDONLY)), Errno.EPERM);
  assert.equal(await errnoOf(fs.open(ctx(), f.ino, O_WRONLY)), Errno.EPERM);
  assert.equal(await errnoOf(fs.read(ctx(), f.ino, fh, 0, 4)), Errno.EBADF);
  assert.equal((await fs.getattr(ctx(), f.ino)).attr.size, 4);
  await fs.flush(ctx(), f.ino, fh);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.equal(await readFile(fs, "w"), "data");
});

// ---- Writing ------------------------------------------------------------------

Deno.test("S11 write() at a wrong offset is EINVAL, aborts the upload and removes the file", async () => {
  const { fs, client } = await mount({ writePartSize: 4 });
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  await fs.write(ctx(), f.ino, fh, 0, enc("0123456789"));
  assert.equal(client.pendingUploads().length, 1);
  assert.equal(await errnoOf(fs.write(ctx(), f.ino, fh, 20, enc("x"))), Errno.EINVAL);
  assert.equal(await errnoOf(fs.write(ctx(), f.ino, fh, 10, enc("x"))), Errno.EINVAL);
  assert.equal(await errnoOf(fs.flush(ctx(), f.ino, fh)), Errno.EINVAL);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.deepEqual(client.pendingUploads(), []);
  assert.deepEqual(client.keys(BUCKET), []);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "f")), Errno.ENOENT);
});

Deno.test("S12 write() streams parts and the object appears only when close completes it", async () => {
  const { fs, client } = await mount({ writePartSize: 8 });
  const f = await fs.mknod(ctx(), ROOT_INO, "big", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  const data = "abcdefghijklmnopqrstuvwxyz0123456789";
  for (let at = 0; at < data.length; at += 5) {
    await fs.write(ctx(), f.ino, fh, at, enc(data.slice(at, at + 5)));
  }
  assert.ok(client.requestCount("uploadPart") >= 3);
  assert.equal(client.peek(BUCKET, "big"), undefined);
  await fs.flush(ctx(), f.ino, fh);
  assert.equal(dec(client.peek(BUCKET, "big")!), data);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.equal(client.requestCount("completeMultipartUpload"), 1);
  assert.equal(await readFile(fs, "big", 7), data);

  // Small files are a single PutObject.
  client.resetCounts();
  await writeFile(fs, "small", "tiny");
  assert.equal(client.requestCount("putObject"), 1);
  assert.equal(client.requestCount("createMultipartUpload"), 0);
});

Deno.test("S12 a failed part upload leaves no object and close reports EIO", async () => {
  const { fs, client } = await mount({ writePartSize: 4 });
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  client.failNext("uploadPart", "ServerError");
  await fs.write(ctx(), f.ino, fh, 0, enc("0123"));
  await fs.write(ctx(), f.ino, fh, 4, enc("4567")).catch(() => {});
  assert.equal(await errnoOf(fs.flush(ctx(), f.ino, fh)), Errno.EIO);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.deepEqual(client.keys(BUCKET), []);
  assert.deepEqual(client.pendingUploads(), []);
});

Deno.test("S13 flush() from another pid or of an empty file defers the upload to release", async () => {
  const { fs, client } = await mount();
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(1), f.ino, O_WRONLY);
  await fs.flush(ctx(1), f.ino, fh); // empty: deferred
  await fs.write(ctx(1), f.ino, fh, 0, enc("data"));
  await fs.flush(ctx(2), f.ino, fh); // other pid: deferred
  assert.equal(client.peek(BUCKET, "f"), undefined);
  await fs.release(ctx(1), f.ino, fh, 0);
  assert.equal(dec(client.peek(BUCKET, "f")!), "data");

  // touch: an empty file appears at release.
  const t = await fs.mknod(ctx(), ROOT_INO, "t", S_IFREG | 0o644, 0);
  const th = await fs.open(ctx(), t.ino, O_WRONLY);
  await fs.setattr(ctx(), t.ino, { atimeMs: "now", mtimeMs: "now" });
  await fs.flush(ctx(), t.ino, th.fh);
  assert.equal(client.peek(BUCKET, "t"), undefined);
  await fs.release(ctx(), t.ino, th.fh, 0);
  assert.equal(client.peek(BUCKET, "t")?.byteLength, 0);
});

Deno.test("S14 fsync() completes the upload and later writes fail with EBADF", async () => {
  const { fs, client } = await mount();
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  await fs.write(ctx(), f.ino, fh, 0, enc("synced"));
  await fs.fsync(ctx(), f.ino, fh, false);
  assert.equal(dec(client.peek(BUCKET, "f")!), "synced");
  assert.equal(await errnoOf(fs.write(ctx(), f.ino, fh, 6, enc("more"))), Errno.EBADF);
  await fs.flush(ctx(), f.ino, fh);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.equal(dec(client.peek(BUCKET, "f")!), "synced");
});

Deno.test("S15 a concurrent remote create wins and close reports EEXIST", async () => {
  const { fs, client } = await mount();
  const f = await fs.mknod(ctx(), ROOT_INO, "f", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  await fs.write(ctx(), f.ino, fh, 0, enc("mine"));
  await put(client, "f", "theirs");
  assert.equal(await errnoOf(fs.flush(ctx(), f.ino, fh)), Errno.EEXIST);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.equal(dec(client.peek(BUCKET, "f")!), "theirs");
  assert.equal(await readFile(fs, "f"), "theirs");
});

Deno.test("S22 a create right after the lookup that missed sends no request of its own", async () => {
  const { fs, client } = await mount();
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "new")), Errno.ENOENT);
  client.resetCounts();
  const f = await fs.mknod(ctx(), ROOT_INO, "new", S_IFREG | 0o644, 0);
  assert.equal(client.requestCount(), 0);
  const { fh } = await fs.open(ctx(), f.ino, O_WRONLY);
  await fs.write(ctx(), f.ino, fh, 0, enc("data"));
  await fs.flush(ctx(), f.ino, fh);
  await fs.release(ctx(), f.ino, fh, 0);
  assert.deepEqual(
    [client.requestCount("headObject"), client.requestCount("listObjects")],
    [0, 0],
  );
  assert.equal(client.requestCount("putObject"), 1);
  assert.equal(dec(client.peek(BUCKET, "new")!), "data");
});

Deno.test("S22 a miss serves one create, and a create without one asks S3", async () => {
  const { fs, client } = await mount();
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "d")), Errno.ENOENT);
  await fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0);
  await fs.rmdir(ctx(), ROOT_INO, "d");
  client.resetCounts();
  await fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0);
  assert.equal(client.requestCount("headObject"), 1, "the spent miss is not reused");
  // A name that appeared since the miss is found, not overwritten.
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "late")), Errno.ENOENT);
  await put(client, "late", "theirs");
  await fs.lookup(ctx(), ROOT_INO, "late");
  assert.equal(await errnoOf(fs.mknod(ctx(), ROOT_INO, "late", S_IFREG | 0o644, 0)), Errno.EEXIST);
  assert.equal(dec(client.peek(BUCKET, "late")!), "theirs");
});

Deno.test("S16 open() overwrites only with allowOverwrite and O_TRUNC", async () => {
  const denied = await mount();
  await put(denied.client, "f", "old");
  const ino = await resolve(denied.fs, "f");
  assert.equal(await errnoOf(denied.fs.open(ctx(), ino, O_WRONLY | O_TRUNC)), Errno.EPERM);
  assert.equal(await errnoOf(denied.fs.open(ctx(), ino, O_WRONLY)), Errno.EPERM);
  assert.equal(await errnoOf(denied.fs.setattr(ctx(), ino, { size: 0 })), Errno.EPERM);
  const rw = await denied.fs.open(ctx(), ino, O_RDWR);
  assert.equal(await errnoOf(denied.fs.write(ctx(), ino, rw.fh, 0, enc("x"))), Errno.EBADF);
  await denied.fs.release(ctx(), ino, rw.fh, 0);

  const { fs, client } = await mount({ allowOverwrite: true });
  await put(client, "g", "old content");
  const g = await resolve(fs, "g");
  const reader = await fs.open(ctx(), g, O_RDONLY);
  assert.equal(await errnoOf(fs.open(ctx(), g, O_WRONLY | O_TRUNC)), Errno.EPERM);
  await fs.release(ctx(), g, reader.fh, 0);
  const { fh } = await fs.open(ctx(), g, O_WRONLY | O_TRUNC);
  assert.equal((await fs.getattr(ctx(), g)).attr.size, 0);
  await fs.write(ctx(), g, fh, 0, enc("new"));
  assert.equal(dec(client.peek(BUCKET, "g")!), "old content");
  await fs.flush(ctx(), g, fh);
  await fs.release(ctx(), g, fh, 0);
  assert.equal(await readFile(fs, "g"), "new");
  await overwriteFile(fs, "g", "again");
  assert.equal(dec(client.peek(BUCKET, "g")!), "again");
});

Deno.test("S17 unlink() needs allowDelete and refuses files being written", async () => {
  const denied = await mount();
  await put(denied.client, "f", "x");
  assert.equal(await errnoOf(denied.fs.unlink(ctx(), ROOT_INO, "f")), Errno.EPERM);
  assert.ok(denied.client.peek(BUCKET, "f"));

  const { fs, client } = await mount({ allowDelete: true });
  await put(client, "f", "content");
  await put(client, "d/x", "");
  const ino = await resolve(fs, "f");
  const reader = await fs.open(ctx(), ino, O_RDONLY);
  await fs.unlink(ctx(), ROOT_INO, "f");
  assert.equal(client.peek(BUCKET, "f"), undefined);
  assert.equal(await errnoOf(fs.read(ctx(), ino, reader.fh, 0, 4)), Errno.ESTALE);
  await fs.release(ctx(), ino, reader.fh, 0);
  assert.equal(await errnoOf(fs.unlink(ctx(), ROOT_INO, "d")), Errno.EISDIR);
  assert.equal(await errnoOf(fs.unlink(ctx(), ROOT_INO, "nope")), Errno.ENOENT);

  const w = await fs.mknod(ctx(), ROOT_INO, "w", S_IFREG | 0o644, 0);
  const { fh } = await fs.open(ctx(), w.ino, O_WRONLY);
  assert.equal(await errnoOf(fs.unlink(ctx(), ROOT_INO, "w")), Errno.EPERM);
  await fs.release(ctx(), w.ino, fh, 0);
  await fs.unlink(ctx(), ROOT_INO, "w");
  assert.deepEqual(client.keys(BUCKET), ["d/x"]);
});

// ---- Directories ----------------------------------------------------------------

Deno.test("S18 mkdir() is local until a file below it is uploaded", async () => {
  const { fs, client } = await mount();
  const d = await fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0);
  await fs.mkdir(ctx(), d.ino, "e", 0o755, 0);
  assert.deepEqual(client.keys(BUCKET), []);
  assert.deepEqual(names(await listDir(fs, "")), ["d/"]);
  assert.deepEqual(names(await listDir(fs, "d")), ["e/"]);
  assert.equal(await errnoOf(fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0)), Errno.EEXIST);
  await writeFile(fs, "d/e/f", "x");
  assert.deepEqual(client.keys(BUCKET), ["d/e/f"]);
  // Now implicit: it disappears with its last key.
  await client.deleteObject(BUCKET, "d/e/f");
  assert.deepEqual(names(await listDir(fs, "")), []);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "d")), Errno.ENOENT);
});

Deno.test("S19 rmdir() removes empty local directories and markers, refuses non-empty ones", async () => {
  const { fs, client } = await mount();
  const d = await fs.mkdir(ctx(), ROOT_INO, "d", 0o755, 0);
  await fs.mkdir(ctx(), d.ino, "e", 0o755, 0);
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "d")), Errno.ENOTEMPTY);
  await fs.rmdir(ctx(), d.ino, "e");
  await fs.rmdir(ctx(), ROOT_INO, "d");
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "d")), Errno.ENOENT);

  await put(client, "r/x", "");
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "r")), Errno.ENOTEMPTY);
  await put(client, "m/");
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "m")), Errno.EPERM);
  const del = await mount({ allowDelete: true }, client);
  await del.fs.rmdir(ctx(), ROOT_INO, "m");
  assert.deepEqual(client.keys(BUCKET), ["r/x"]);
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "r/x".split("/")[0]!)), Errno.ENOTEMPTY);
  await put(client, "file");
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "file")), Errno.ENOTDIR);
});

Deno.test("S20 readdir() sorts by name, re-sorting S3 common prefixes, and merges local entries", async () => {
  const { fs, client } = await mount();
  for (const k of ["a", "a-b", "a/x", "a.txt", "b", "b/c", "c-/d", "c/e", "c"]) {
    await put(client, k);
  }
  await fs.mkdir(ctx(), ROOT_INO, "aa", 0o755, 0);
  const f = await fs.mknod(ctx(), ROOT_INO, "bb", S_IFREG | 0o644, 0);
  const expected = ["a/", "a-b", "a.txt", "aa/", "b/", "bb", "c/", "c-/"];
  for (const plus of [false, true]) {
    for (const perCall of [1, 2, 100]) {
      assert.deepEqual(names(await listDir(fs, "", { plus, perCall })), expected);
    }
  }
  fs.forget(f.ino, 1);
});

// ---- Unsupported operations -------------------------------------------------------

Deno.test("S21 symlink() and link() are EPERM and write nothing, EROFS on a read-only mount", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "x");
  const f = await resolve(fs, "f");
  assert.equal(await errnoOf(fs.symlink(ctx(), ROOT_INO, "s", "f")), Errno.EPERM);
  assert.equal(await errnoOf(fs.link(ctx(), f, ROOT_INO, "g")), Errno.EPERM);
  assert.deepEqual(client.keys(BUCKET), ["f"]);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "s")), Errno.ENOENT);
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "g")), Errno.ENOENT);
  const ro = await mount({ readOnly: true }, client);
  assert.equal(await errnoOf(ro.fs.symlink(ctx(), ROOT_INO, "s", "f")), Errno.EROFS);
  assert.equal(await errnoOf(ro.fs.link(ctx(), f, ROOT_INO, "g")), Errno.EROFS);
});

// ---- Other rules ------------------------------------------------------------------

Deno.test("rename() is EXDEV, and EROFS on a read-only mount", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "x");
  assert.equal(await errnoOf(fs.rename(ctx(), ROOT_INO, "f", ROOT_INO, "g", 0)), Errno.EXDEV);
  const ro = await mount({ readOnly: true }, client);
  assert.equal(await errnoOf(ro.fs.rename(ctx(), ROOT_INO, "f", ROOT_INO, "g", 0)), Errno.EROFS);
});

Deno.test("readOnly mount answers EROFS for every change", async () => {
  const { fs, client } = await mount({ readOnly: true, allowDelete: true, allowOverwrite: true });
  await put(client, "f", "x");
  const ino = await resolve(fs, "f");
  assert.equal(await errnoOf(fs.mknod(ctx(), ROOT_INO, "n", S_IFREG | 0o644, 0)), Errno.EROFS);
  assert.equal(await errnoOf(fs.mkdir(ctx(), ROOT_INO, "n", 0o755, 0)), Errno.EROFS);
  assert.equal(await errnoOf(fs.unlink(ctx(), ROOT_INO, "f")), Errno.EROFS);
  assert.equal(await errnoOf(fs.rmdir(ctx(), ROOT_INO, "f")), Errno.EROFS);
  assert.equal(await errnoOf(fs.setattr(ctx(), ino, { mode: 0o600 })), Errno.EROFS);
  assert.equal(await errnoOf(fs.open(ctx(), ino, O_WRONLY | O_TRUNC)), Errno.EROFS);
  assert.equal(await readFile(fs, "f"), "x");
});

Deno.test("setattr() refuses chmod/chown to other values and utimes on uploaded files", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "x");
  const ino = await resolve(fs, "f");
  assert.equal(await errnoOf(fs.setattr(ctx(), ino, { mode: S_IFREG | 0o600 })), Errno.EPERM);
  assert.equal(await errnoOf(fs.setattr(ctx(), ino, { uid: 5 })), Errno.EPERM);
  assert.equal(await errnoOf(fs.setattr(ctx(), ino, { mtimeMs: 0 })), Errno.EPERM);
  const same = await fs.setattr(ctx(), ino, { mode: S_IFREG | 0o644, uid: 0 });
  assert.equal(same.attr.size, 1);
});

Deno.test("open() with O_SYNC or O_DSYNC is EINVAL; mknod of a non-regular file is EINVAL", async () => {
  const { fs, client } = await mount();
  await put(client, "f", "x");
  const ino = await resolve(fs, "f");
  assert.equal(await errnoOf(fs.open(ctx(), ino, O_RDONLY | O_DSYNC)), Errno.EINVAL);
  assert.equal(await errnoOf(fs.mknod(ctx(), ROOT_INO, "fifo", 0o010644, 0)), Errno.EINVAL);
});

Deno.test("errors from S3 map to errno: AccessDenied is EACCES, ServerError is EIO", async () => {
  const { fs, client } = await mount();
  client.failNext("listObjects", "AccessDenied");
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "x")), Errno.EACCES);
  client.failNext("headObject", "ServerError");
  assert.equal(await errnoOf(fs.lookup(ctx(), ROOT_INO, "x")), Errno.EIO);
});

Deno.test("lookup() answers EINTR when the kernel interrupts it", async () => {
  const { fs } = await mount();
  const ac = new AbortController();
  ac.abort();
  const c = { ...ctx(), signal: ac.signal };
  assert.equal(await errnoOf(fs.lookup(c, ROOT_INO, "x")), Errno.EINTR);
});

Deno.test("statfs() reports huge fake numbers", async () => {
  const { fs } = await mount();
  const s = await fs.statfs(ctx(), ROOT_INO);
  assert.equal(s.blocks, 2 ** 54);
  assert.equal(s.namelen, 255);
  assert.ok(Number.isSafeInteger(s.files) || s.files === 2 ** 54);
});

Deno.test("concurrent mknod() of one name creates it once", async () => {
  const { fs } = await mount();
  const results = await Promise.all(
    [1, 2, 3].map((i) => errnoOf(fs.mknod(ctx(i), ROOT_INO, "same", S_IFREG | 0o644, 0))),
  );
  assert.deepEqual(results.sort(), [0, Errno.EEXIST, Errno.EEXIST]);
});

// ---- Takeover -----------------------------------------------------------------

Deno.test("S23 adopt() continues a predecessor's session: numbers kept, stat asked, readers keep their version or ESTALE, writers EIO, left uploads aborted", async () => {
  const { fs, client } = await mount();
  await put(client, "a/b.txt", "one");
  await put(client, "c.txt", "two");
  const pinned = (await client.headObject(BUCKET, "a/b.txt"))!.etag;
  const left = await client.createMultipartUpload(BUCKET, "w.txt");
  fs.adopt({
    nodes: [
      { ino: 5, parent: ROOT_INO, name: "a", kind: "dir", lookups: 1 },
      { ino: 9, parent: 5, name: "b.txt", kind: "file", lookups: 2 },
      { ino: 12, parent: ROOT_INO, name: "c.txt", kind: "file", lookups: 1 },
      { ino: 13, parent: ROOT_INO, name: "w.txt", kind: "file", lookups: 1 },
    ],
    handles: [
      { fh: 3, ino: 9, flags: O_RDONLY, version: pinned },
      { fh: 4, ino: 12, flags: O_RDONLY, version: '"an older version"' },
      { fh: 7, ino: 13, flags: O_WRONLY },
      { fh: 8, ino: 5, flags: 0 },
    ],
    uploads: [{ uploadId: left, key: "w.txt" }],
    nextIno: 20,
    nextFh: 10,
  });
  // The stat comes from S3, even with the handle given.
  assert.equal((await fs.getattr(ctx(), 9, 3)).attr.size, 3);
  assert.equal(dec(await fs.read(ctx(), 9, 3, 0, 100)), "one");
  assert.equal(await errnoOf(fs.read(ctx(), 12, 4, 0, 100)), Errno.ESTALE);
  assert.equal(await errnoOf(fs.write(ctx(), 13, 7, 0, enc("x"))), Errno.EIO);
  assert.equal(await errnoOf(fs.flush(ctx(), 13, 7)), Errno.EIO);
  assert.equal(await errnoOf(fs.fsync(ctx(), 13, 7, false)), Errno.EIO);
  await fs.release(ctx(), 13, 7, 0);
  const listed: string[] = [];
  await fs.readdir(ctx(), 5, 8, 0, false, (e) => (listed.push(e.name), true));
  assert.deepEqual(listed, [".", "..", "b.txt"]);
  await fs.releasedir(ctx(), 5, 8);
  // Same inode for the same name; new numbers above the predecessor's.
  assert.equal((await fs.lookup(ctx(), ROOT_INO, "c.txt")).ino, 12);
  await put(client, "d.txt", "new");
  const d = await fs.lookup(ctx(), ROOT_INO, "d.txt");
  assert.ok(d.ino >= 20, `new node ID ${d.ino} is above the predecessor's`);
  const { fh } = await fs.open(ctx(), d.ino, O_RDONLY);
  assert.ok(fh >= 10, `new handle ${fh} is above the predecessor's`);
  for (let i = 0; i < 50 && client.pendingUploads(BUCKET).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(client.pendingUploads(BUCKET), [], "the left upload is aborted");
  assert.equal(await client.headObject(BUCKET, "w.txt"), null);
  await fs.destroy();
});
