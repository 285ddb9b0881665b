import assert from "node:assert/strict";
import { MemoryObjectClient } from "./memory_object_client.ts";
import { compareKeys, isS3Error, type ListPage } from "./object_client.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function withBucket(opts?: ConstructorParameters<typeof MemoryObjectClient>[0]) {
  const c = new MemoryObjectClient(opts);
  await c.createBucket("bkt");
  return c;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err) => isS3Error(err) && err.code === code);
}

async function listAll(
  c: MemoryObjectClient,
  opts: { prefix?: string; delimiter?: string; maxKeys?: number; startAfter?: string },
): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page: ListPage = await c.listObjects("bkt", { ...opts, continuationToken: token });
    out.push(...page.objects.map((o) => o.key), ...page.commonPrefixes.map((p) => `P:${p}`));
    token = page.nextContinuationToken;
  } while (token);
  return out;
}

Deno.test("compareKeys() orders by UTF-8 bytes, not UTF-16 code units", () => {
  // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (4 bytes, F0 ...).
  assert.ok(compareKeys("\uff5e", "\u{1f600}") < 0);
  assert.ok("\uff5e" > "\u{1f600}"); // JavaScript's own order disagrees
  assert.ok(compareKeys("a", "a/") < 0);
  assert.ok(compareKeys("a-", "a/") < 0);
});

Deno.test("createBucket() rejects duplicates and invalid names; deleteBucket() needs an empty bucket", async () => {
  const c = await withBucket();
  await rejectsWith(c.createBucket("bkt"), "BucketAlreadyOwnedByYou");
  await rejectsWith(c.createBucket("Bad_Name"), "InvalidBucketName");
  await c.putObject("bkt", "k", enc("x"));
  await rejectsWith(c.deleteBucket("bkt"), "BucketNotEmpty");
  await c.deleteObject("bkt", "k");
  await c.deleteBucket("bkt");
  await rejectsWith(c.headBucket("bkt"), "NoSuchBucket");
  await rejectsWith(c.headObject("bkt", "k"), "NoSuchBucket");
});

Deno.test("putObject() gives a new quoted ETag on every put, even for equal content", async () => {
  const c = await withBucket();
  const a = await c.putObject("bkt", "k", enc("same"));
  const b = await c.putObject("bkt", "k", enc("same"));
  assert.match(a.etag, /^"[0-9a-f]{32}"$/);
  assert.notEqual(a.etag, b.etag);
  assert.equal((await c.headObject("bkt", "k"))?.etag, b.etag);
  assert.equal(await c.headObject("bkt", "missing"), null);
});

Deno.test("putObject() copies the body so callers may reuse their buffer", async () => {
  const c = await withBucket();
  const buf = enc("abc");
  await c.putObject("bkt", "k", buf);
  buf[0] = 0x7a;
  assert.equal(dec((await c.getObject("bkt", "k")).body), "abc");
});

Deno.test("putObject() with ifNoneMatch fails with PreconditionFailed when the key exists", async () => {
  const c = await withBucket();
  await c.putObject("bkt", "k", enc("1"), { ifNoneMatch: true });
  await rejectsWith(c.putObject("bkt", "k", enc("2"), { ifNoneMatch: true }), "PreconditionFailed");
  assert.equal(dec(c.peek("bkt", "k")!), "1");
});

Deno.test("getObject() serves ranges, clamps the end, and rejects unsatisfiable ranges", async () => {
  const c = await withBucket();
  await c.putObject("bkt", "k", enc("0123456789"));
  const r = await c.getObject("bkt", "k", { range: { start: 2, end: 5 } });
  assert.equal(dec(r.body), "234");
  assert.equal(r.objectSize, 10);
  assert.equal(dec((await c.getObject("bkt", "k", { range: { start: 8, end: 100 } })).body), "89");
  await rejectsWith(c.getObject("bkt", "k", { range: { start: 10, end: 12 } }), "InvalidRange");
  await rejectsWith(c.getObject("bkt", "nope"), "NoSuchKey");
});

Deno.test("getObject() with a stale ifMatch fails with PreconditionFailed before the range check", async () => {
  const c = await withBucket();
  const { etag } = await c.putObject("bkt", "k", enc("old"));
  await c.putObject("bkt", "k", enc("new"));
  await rejectsWith(c.getObject("bkt", "k", { ifMatch: etag }), "PreconditionFailed");
  await rejectsWith(
    c.getObject("bkt", "k", { ifMatch: etag, range: { start: 50, end: 60 } }),
    "PreconditionFailed",
  );
});

Deno.test("getObject() honours an aborted signal", async () => {
  const c = await withBucket();
  await c.putObject("bkt", "k", enc("x"));
  const ac = new AbortController();
  ac.abort();
  await rejectsWith(c.getObject("bkt", "k", { signal: ac.signal }), "Aborted");
});

Deno.test("listObjects() groups common prefixes in S3 order with a delimiter", async () => {
  const c = await withBucket();
  for (const k of ["a", "a-b", "a/x", "a/y/z", "b/", "b/c", "c"]) {
    await c.putObject("bkt", k, enc(""));
  }
  assert.deepEqual(await listAll(c, { delimiter: "/" }), ["a", "a-b", "c", "P:a/", "P:b/"]);
  const page = await c.listObjects("bkt", { delimiter: "/" });
  assert.deepEqual(page.commonPrefixes, ["a/", "b/"]);
  assert.deepEqual(await listAll(c, { prefix: "a/", delimiter: "/" }), ["a/x", "P:a/y/"]);
  assert.deepEqual(await listAll(c, { prefix: "b/", delimiter: "/" }), ["b/", "b/c"]);
});

Deno.test("listObjects() pages with continuation tokens without repeating common prefixes", async () => {
  const c = await withBucket();
  const keys: string[] = [];
  for (let i = 0; i < 25; i++) keys.push(`d${String(i).padStart(2, "0")}/x`, `f${i}`);
  for (const k of keys) await c.putObject("bkt", k, enc(""));
  const all = await listAll(c, { delimiter: "/", maxKeys: 4 });
  assert.equal(all.length, 50);
  assert.equal(new Set(all).size, 50);
  const first = await c.listObjects("bkt", { delimiter: "/", maxKeys: 4 });
  assert.equal(first.objects.length + first.commonPrefixes.length, 4);
  assert.ok(first.nextContinuationToken);
});

Deno.test("listObjects() honours startAfter and clamps maxKeys to 1000", async () => {
  const c = await withBucket();
  for (let i = 0; i < 1005; i++) {
    await c.putObject("bkt", `k${String(i).padStart(4, "0")}`, enc(""));
  }
  const page = await c.listObjects("bkt", { maxKeys: 5000 });
  assert.equal(page.objects.length, 1000);
  assert.ok(page.nextContinuationToken);
  const after = await c.listObjects("bkt", { startAfter: "k1001" });
  assert.deepEqual(after.objects.map((o) => o.key), ["k1002", "k1003", "k1004"]);
  assert.equal(after.nextContinuationToken, undefined);
});

Deno.test("listObjects() with maxKeys 1 finds a directory through its marker or contents", async () => {
  const c = await withBucket();
  await c.putObject("bkt", "dir-1/x", enc(""));
  await c.putObject("bkt", "dir/", enc(""));
  const page = await c.listObjects("bkt", { prefix: "dir/", delimiter: "/", maxKeys: 1 });
  assert.deepEqual(page.objects.map((o) => o.key), ["dir/"]);
});

Deno.test("multipart upload assembles parts and enforces the minimum part size", async () => {
  const c = await withBucket({ minPartSize: 4 });
  const id = await c.createMultipartUpload("bkt", "big");
  const e1 = await c.uploadPart("bkt", "big", id, 1, enc("aaaa"));
  const e2 = await c.uploadPart("bkt", "big", id, 2, enc("bb"));
  const done = await c.completeMultipartUpload("bkt", "big", id, [
    { partNumber: 1, etag: e1 },
    { partNumber: 2, etag: e2 },
  ]);
  assert.match(done.etag, /-2"$/);
  assert.equal(dec(c.peek("bkt", "big")!), "aaaabb");
  assert.deepEqual(c.pendingUploads(), []);

  const id2 = await c.createMultipartUpload("bkt", "small");
  const s1 = await c.uploadPart("bkt", "small", id2, 1, enc("aa"));
  const s2 = await c.uploadPart("bkt", "small", id2, 2, enc("bb"));
  await rejectsWith(
    c.completeMultipartUpload("bkt", "small", id2, [
      { partNumber: 1, etag: s1 },
      { partNumber: 2, etag: s2 },
    ]),
    "EntityTooSmall",
  );
  await rejectsWith(
    c.completeMultipartUpload("bkt", "small", id2, [{ partNumber: 1, etag: '"bad"' }]),
    "InvalidPart",
  );
  await c.abortMultipartUpload("bkt", "small", id2);
  await rejectsWith(c.uploadPart("bkt", "small", id2, 3, enc("x")), "NoSuchUpload");
  assert.equal(c.peek("bkt", "small"), undefined);
});

Deno.test("completeMultipartUpload() with ifNoneMatch does not clobber a concurrent create", async () => {
  const c = await withBucket({ minPartSize: 1 });
  const id = await c.createMultipartUpload("bkt", "k");
  const e1 = await c.uploadPart("bkt", "k", id, 1, enc("mine"));
  await c.putObjectOutOfBand("bkt", "k", "theirs");
  await rejectsWith(
    c.completeMultipartUpload("bkt", "k", id, [{ partNumber: 1, etag: e1 }], { ifNoneMatch: true }),
    "PreconditionFailed",
  );
  assert.equal(dec(c.peek("bkt", "k")!), "theirs");
});

Deno.test("failNext() injects failures and requestCount() counts every request", async () => {
  const c = await withBucket();
  c.failNext("headObject", "ServerError");
  await rejectsWith(c.headObject("bkt", "k"), "ServerError");
  assert.equal(await c.headObject("bkt", "k"), null);
  assert.equal(c.requestCount("headObject"), 2);
  assert.equal(c.requestCount("listObjects"), 0);
});

Deno.test("beforeRequest can hold a request until the test releases it", async () => {
  const c = await withBucket();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  c.setBeforeRequest((op) => op === "putObject" ? gate : undefined);
  const put = c.putObject("bkt", "k", enc("x"));
  assert.equal(await c.headObject("bkt", "k"), null);
  release();
  await put;
  assert.ok(await c.headObject("bkt", "k"));
});

Deno.test("listObjects() resumes after a marker object that ends with the delimiter", async () => {
  const c = await withBucket();
  for (const k of ["b/", "b/c", "b/d/e"]) await c.putObject("bkt", k, enc(""));
  assert.deepEqual(await listAll(c, { prefix: "b/", delimiter: "/", maxKeys: 1 }), [
    "b/",
    "b/c",
    "P:b/d/",
  ]);
});

Deno.test("putBucketTagging() replaces the tags getBucketTagging() returns", async () => {
  const c = await withBucket();
  assert.deepEqual(await c.getBucketTagging("bkt"), {});
  await c.putBucketTagging("bkt", { a: "1", b: "2" });
  await c.putBucketTagging("bkt", { c: "3" });
  assert.deepEqual(await c.getBucketTagging("bkt"), { c: "3" });
  await rejectsWith(c.getBucketTagging("none"), "NoSuchBucket");
});
