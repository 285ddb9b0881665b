/**
 * One set of behaviour checks run against both `ObjectClient`s: the
 * in-memory double and `AwsObjectClient` on a real MinIO. The file system
 * core is unit-tested against the double, so every way the double differs
 * from S3 is a way those tests can pass while the real mount fails; these
 * checks pin the behaviour both must share.
 *
 * Known, deliberate gaps are listed in `DIVERGENCES` with the reason, and
 * asserted as divergences so that a fix on either side is noticed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { MemoryObjectClient } from "../../internal/s3/memory_object_client.ts";
import { isS3Error, type ObjectClient, type S3ErrorCode } from "../../internal/s3/object_client.ts";
import { minioClientConfig, startMinio } from "../support/mod.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

type Check = (c: ObjectClient, bucket: string) => Promise<void>;

async function fails(p: Promise<unknown>, code: S3ErrorCode): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err !== undefined, `expected ${code}, but the call succeeded`);
  assert.ok(isS3Error(err), `expected an S3Error, got ${err}`);
  assert.equal(err.code, code, err.message);
}

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function listAll(
  c: ObjectClient,
  bucket: string,
  opts: { prefix?: string; delimiter?: string; maxKeys?: number },
): Promise<{ objects: string[]; prefixes: string[]; pages: number; largestPage: number }> {
  const objects: string[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  let pages = 0;
  let largestPage = 0;
  do {
    const page = await c.listObjects(bucket, { ...opts, continuationToken: token });
    largestPage = Math.max(largestPage, page.objects.length + page.commonPrefixes.length);
    objects.push(...page.objects.map((o) => o.key));
    prefixes.push(...page.commonPrefixes);
    token = page.nextContinuationToken;
    pages++;
  } while (token);
  return { objects, prefixes, pages, largestPage };
}

const CHECKS: Record<string, Check> = {
  "bucket lifecycle and its errors": async (c, bucket) => {
    await fails(c.createBucket(bucket), "BucketAlreadyOwnedByYou");
    await fails(c.headBucket(`${bucket}-missing`), "NoSuchBucket");
    await fails(c.deleteBucket(`${bucket}-missing`), "NoSuchBucket");
    await fails(c.createBucket("UPPER_case"), "InvalidBucketName");
    await fails(c.createBucket("ab"), "InvalidBucketName");
    await c.putObject(bucket, "k", enc.encode("x"));
    await fails(c.deleteBucket(bucket), "BucketNotEmpty");
    await c.deleteObject(bucket, "k");
    await c.deleteBucket(bucket);
    await fails(c.headBucket(bucket), "NoSuchBucket");
    await c.createBucket(bucket);
  },

  "object round trip, head and delete": async (c, bucket) => {
    const body = bytes(70_000, 1);
    const { etag } = await c.putObject(bucket, "dir/obj", body);
    assert.match(etag, /^"[^"]+"$/);
    const info = await c.headObject(bucket, "dir/obj");
    assert.deepEqual(
      info && { key: info.key, size: info.size, etag: info.etag, sc: info.storageClass },
      { key: "dir/obj", size: 70_000, etag, sc: "STANDARD" },
    );
    const got = await c.getObject(bucket, "dir/obj");
    assert.ok(sameBytes(got.body, body));
    assert.equal(got.etag, etag);
    assert.equal(got.objectSize, 70_000);
    await c.deleteObject(bucket, "dir/obj");
    await c.deleteObject(bucket, "dir/obj");
    assert.equal(await c.headObject(bucket, "dir/obj"), null);
    await fails(c.getObject(bucket, "dir/obj"), "NoSuchKey");
  },

  "an empty object": async (c, bucket) => {
    await c.putObject(bucket, "empty", new Uint8Array(0));
    const got = await c.getObject(bucket, "empty");
    assert.equal(got.body.byteLength, 0);
    assert.equal(got.objectSize, 0);
    assert.equal((await c.headObject(bucket, "empty"))?.size, 0);
    await fails(c.getObject(bucket, "empty", { range: { start: 0, end: 1 } }), "InvalidRange");
  },

  "overwrites change the ETag even for identical content": async (c, bucket) => {
    const a = await c.putObject(bucket, "k", enc.encode("v1"));
    const b = await c.putObject(bucket, "k", enc.encode("v2"));
    assert.notEqual(a.etag, b.etag);
    assert.equal(dec.decode((await c.getObject(bucket, "k")).body), "v2");
  },

  "ranged reads": async (c, bucket) => {
    const body = bytes(4096, 2);
    await c.putObject(bucket, "r", body);
    const mid = await c.getObject(bucket, "r", { range: { start: 100, end: 200 } });
    assert.ok(sameBytes(mid.body, body.subarray(100, 200)));
    assert.equal(mid.objectSize, 4096);
    const clipped = await c.getObject(bucket, "r", { range: { start: 4000, end: 9000 } });
    assert.ok(sameBytes(clipped.body, body.subarray(4000)));
    const last = await c.getObject(bucket, "r", { range: { start: 4095, end: 4096 } });
    assert.deepEqual([...last.body], [body[4095]]);
    await fails(c.getObject(bucket, "r", { range: { start: 4096, end: 4100 } }), "InvalidRange");
  },

  "ranged reads into given memory": async (c, bucket) => {
    const body = bytes(300_000, 5);
    await c.putObject(bucket, "into", body);
    // Room for the body plus one byte: used, and transferred.
    const memory = new ArrayBuffer(100_001);
    const got = await c.getObject(bucket, "into", {
      range: { start: 1000, end: 101_000 },
      into: memory,
    });
    assert.ok(sameBytes(got.body, body.subarray(1000, 101_000)));
    assert.equal(got.body.byteOffset, 0);
    assert.equal(got.body.buffer.byteLength, 100_001);
    assert.ok(memory.detached);
    // Too small: ignored, the body is read into fresh memory.
    const small = new ArrayBuffer(100);
    const other = await c.getObject(bucket, "into", {
      range: { start: 0, end: 1000 },
      into: small,
    });
    assert.ok(sameBytes(other.body, body.subarray(0, 1000)));
    assert.notEqual(other.body.buffer, small);
  },

  "If-Match on reads": async (c, bucket) => {
    const first = await c.putObject(bucket, "m", enc.encode("first"));
    const ok = await c.getObject(bucket, "m", { ifMatch: first.etag });
    assert.equal(dec.decode(ok.body), "first");
    await c.putObject(bucket, "m", enc.encode("second"));
    await fails(c.getObject(bucket, "m", { ifMatch: first.etag }), "PreconditionFailed");
    // A failed precondition wins over an unsatisfiable range.
    await fails(
      c.getObject(bucket, "m", { ifMatch: first.etag, range: { start: 100, end: 200 } }),
      "PreconditionFailed",
    );
    await fails(c.getObject(bucket, "absent", { ifMatch: first.etag }), "NoSuchKey");
  },

  "If-None-Match on puts": async (c, bucket) => {
    await c.putObject(bucket, "n", enc.encode("one"), { ifNoneMatch: true });
    await fails(
      c.putObject(bucket, "n", enc.encode("two"), { ifNoneMatch: true }),
      "PreconditionFailed",
    );
    assert.equal(dec.decode((await c.getObject(bucket, "n")).body), "one");
    await c.deleteObject(bucket, "n");
    await c.putObject(bucket, "n", enc.encode("three"), { ifNoneMatch: true });
  },

  "missing bucket on object calls": async (c, bucket) => {
    const missing = `${bucket}-gone`;
    await fails(c.getObject(missing, "k"), "NoSuchBucket");
    await fails(c.putObject(missing, "k", enc.encode("x")), "NoSuchBucket");
    await fails(c.listObjects(missing), "NoSuchBucket");
    await fails(c.createMultipartUpload(missing, "k"), "NoSuchBucket");
  },

  "listing order, prefixes, delimiters and pages": async (c, bucket) => {
    // No key "a" next to "a/…": MinIO stores keys as paths and cannot list both.
    // (The same holds one level down: no "a/b" next to "a/b/c".)
    const keys = [
      "a/b",
      "a/c",
      "a/d/c",
      "a+b",
      "a-b",
      "a.b",
      "a0",
      "b/",
      "b/x",
      "sp ace/é",
      "z\u00e9",
      "z\u{1F600}",
      "z\uFF01",
    ];
    for (const k of keys) await c.putObject(bucket, k, enc.encode(k));

    const flat = await listAll(c, bucket, {});
    assert.deepEqual(flat.objects, [
      "a+b",
      "a-b",
      "a.b",
      "a/b",
      "a/c",
      "a/d/c",
      "a0",
      "b/",
      "b/x",
      "sp ace/é",
      "z\u00e9",
      "z\uFF01",
      "z\u{1F600}",
    ]);

    const top = await listAll(c, bucket, { delimiter: "/" });
    assert.deepEqual(top.objects, [
      "a+b",
      "a-b",
      "a.b",
      "a0",
      "z\u00e9",
      "z\uFF01",
      "z\u{1F600}",
    ]);
    assert.deepEqual(top.prefixes, ["a/", "b/", "sp ace/"]);

    const paged = await listAll(c, bucket, { delimiter: "/", maxKeys: 2 });
    assert.deepEqual(paged.objects, top.objects);
    assert.deepEqual(paged.prefixes, top.prefixes);
    // S3 may end with an empty page after a full one (MinIO does), so only a lower bound holds.
    assert.ok(paged.pages >= 5, `${paged.pages} pages`);
    assert.equal(paged.largestPage, 2);

    const underA = await listAll(c, bucket, { prefix: "a/", delimiter: "/" });
    assert.deepEqual(underA.objects, ["a/b", "a/c"]);
    assert.deepEqual(underA.prefixes, ["a/d/"]);

    const underB = await listAll(c, bucket, { prefix: "b/", delimiter: "/" });
    assert.deepEqual(underB.objects, ["b/", "b/x"]);

    const after = await c.listObjects(bucket, { startAfter: "a0" });
    assert.deepEqual(after.objects.map((o) => o.key).slice(0, 2), ["b/", "b/x"]);

    const none = await c.listObjects(bucket, { prefix: "nothing/" });
    assert.deepEqual(none, { objects: [], commonPrefixes: [] });

    const listed = (await c.listObjects(bucket, { prefix: "a/d/c" })).objects[0];
    assert.equal(listed?.size, 5);
    assert.equal(listed?.etag, (await c.headObject(bucket, "a/d/c"))?.etag);
  },

  "multipart upload, completion and its errors": async (c, bucket) => {
    const p1 = bytes(5 * MiB, 3);
    const p2 = bytes(100, 4);
    const id = await c.createMultipartUpload(bucket, "mp");
    const e1 = await c.uploadPart(bucket, "mp", id, 1, p1);
    const e2 = await c.uploadPart(bucket, "mp", id, 2, p2);
    await fails(
      c.completeMultipartUpload(bucket, "mp", id, [{
        partNumber: 1,
        etag: '"0123456789abcdef0123456789abcdef"',
      }]),
      "InvalidPart",
    );
    const { etag } = await c.completeMultipartUpload(bucket, "mp", id, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2 },
    ]);
    assert.match(etag, /-2"$/);
    const got = await c.getObject(bucket, "mp", {
      range: { start: 5 * MiB - 1, end: 5 * MiB + 100 },
    });
    assert.equal(got.body[0], p1[5 * MiB - 1]);
    assert.ok(sameBytes(got.body.subarray(1), p2));
    assert.equal(got.objectSize, 5 * MiB + 100);
    await fails(c.uploadPart(bucket, "mp", id, 3, p2), "NoSuchUpload");
  },

  "multipart parts below 5 MiB": async (c, bucket) => {
    const id = await c.createMultipartUpload(bucket, "small");
    const e1 = await c.uploadPart(bucket, "small", id, 1, bytes(1000, 5));
    const e2 = await c.uploadPart(bucket, "small", id, 2, bytes(1000, 6));
    await fails(
      c.completeMultipartUpload(bucket, "small", id, [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: e2 },
      ]),
      "EntityTooSmall",
    );
    // A single small part is a valid upload.
    await c.completeMultipartUpload(bucket, "small", id, [{ partNumber: 1, etag: e1 }]);
    assert.equal((await c.headObject(bucket, "small"))?.size, 1000);
  },

  "multipart abort and If-None-Match on completion": async (c, bucket) => {
    const aborted = await c.createMultipartUpload(bucket, "ab");
    await c.uploadPart(bucket, "ab", aborted, 1, bytes(10, 7));
    await c.abortMultipartUpload(bucket, "ab", aborted);
    await fails(c.uploadPart(bucket, "ab", aborted, 2, bytes(10, 7)), "NoSuchUpload");
    assert.equal(await c.headObject(bucket, "ab"), null);

    await c.putObject(bucket, "exists", enc.encode("keep"));
    const id = await c.createMultipartUpload(bucket, "exists");
    const e = await c.uploadPart(bucket, "exists", id, 1, bytes(10, 8));
    await fails(
      c.completeMultipartUpload(bucket, "exists", id, [{ partNumber: 1, etag: e }], {
        ifNoneMatch: true,
      }),
      "PreconditionFailed",
    );
    assert.equal(dec.decode((await c.getObject(bucket, "exists")).body), "keep");
  },

  "aborted signals": async (c, bucket) => {
    await c.putObject(bucket, "s", enc.encode("x"));
    const ac = new AbortController();
    ac.abort();
    await fails(c.getObject(bucket, "s", { signal: ac.signal }), "Aborted");
    await fails(c.headObject(bucket, "s", { signal: ac.signal }), "Aborted");
    await fails(c.listObjects(bucket, { signal: ac.signal }), "Aborted");
    await fails(c.putObject(bucket, "s2", enc.encode("y"), { signal: ac.signal }), "Aborted");
    assert.equal(await c.headObject(bucket, "s2"), null);
  },

  "user metadata: stored by put, returned by head only, replaced by overwrite": async (
    c,
    bucket,
  ) => {
    await c.putObject(bucket, "m", new Uint8Array(0), {
      metadata: { "csi-name": "pvc-1", "csi-capacity": "1073741824" },
    });
    const head = await c.headObject(bucket, "m");
    assert.deepEqual(head?.metadata, { "csi-name": "pvc-1", "csi-capacity": "1073741824" });
    const listed = await c.listObjects(bucket, { prefix: "m" });
    assert.equal(listed.objects[0]?.metadata, undefined);
    await c.putObject(bucket, "m", enc.encode("x"));
    assert.equal((await c.headObject(bucket, "m"))?.metadata, undefined);
    await c.deleteObject(bucket, "m");
  },

  "bucket tags": async (c, bucket) => {
    assert.ok(c.putBucketTagging && c.getBucketTagging);
    assert.deepEqual(await c.getBucketTagging(bucket), {});
    await c.putBucketTagging(bucket, { a: "1", b: "two" });
    assert.deepEqual(await c.getBucketTagging(bucket), { a: "1", b: "two" });
    await c.putBucketTagging(bucket, { c: "3" });
    assert.deepEqual(await c.getBucketTagging(bucket), { c: "3" });
  },
};

/** Where the double and S3 knowingly differ; each entry checks the divergence itself. */
const DIVERGENCES: Record<
  string,
  { why: string; check: (c: ObjectClient, bucket: string) => Promise<string> }
> = {
  "headObject on a missing bucket": {
    why:
      "S3 answers HEAD with a bare 404, so AwsObjectClient cannot tell a missing bucket from a missing key",
    check: async (c, bucket) => {
      try {
        return String(await c.headObject(`${bucket}-gone`, "k"));
      } catch (err) {
        return isS3Error(err) ? err.code : String(err);
      }
    },
  },
  "abortMultipartUpload of an upload already aborted": {
    why:
      "MinIO accepts a second abort; the double answers NoSuchUpload (callers should treat both as done)",
    check: async (c, bucket) => {
      const id = await c.createMultipartUpload(bucket, "twice");
      await c.abortMultipartUpload(bucket, "twice", id);
      try {
        await c.abortMultipartUpload(bucket, "twice", id);
        return "ok";
      } catch (err) {
        return isS3Error(err) ? err.code : String(err);
      }
    },
  },
  "getObject of an empty range": {
    why: "HTTP cannot express an empty range; AwsObjectClient answers it with a HEAD",
    check: async (c, bucket) => {
      await c.putObject(bucket, "e", enc.encode("abc"));
      try {
        const r = await c.getObject(bucket, "e", { range: { start: 1, end: 1 } });
        return `body ${r.body.byteLength}`;
      } catch (err) {
        return isS3Error(err) ? err.code : String(err);
      }
    },
  },
};

async function runChecks(
  t: Deno.TestContext,
  name: string,
  client: ObjectClient,
): Promise<Record<string, string>> {
  let n = 0;
  for (const [label, check] of Object.entries(CHECKS)) {
    await t.step(`${name}: ${label}`, async () => {
      const bucket = `contract-${++n}`;
      await client.createBucket(bucket);
      await check(client, bucket);
    });
  }
  const outcomes: Record<string, string> = {};
  for (const [label, d] of Object.entries(DIVERGENCES)) {
    const bucket = `divergence-${++n}`;
    await client.createBucket(bucket);
    outcomes[label] = await d.check(client, bucket);
  }
  return outcomes;
}

Deno.test("ObjectClient contract holds for MemoryObjectClient and AwsObjectClient on MinIO", async (t) => {
  const memory = new MemoryObjectClient();
  const memoryOutcomes = await runChecks(t, "memory", memory);

  const m = await startMinio();
  const aws = new AwsObjectClient(minioClientConfig(m));
  try {
    const awsOutcomes = await runChecks(t, "minio", aws);
    await t.step("the known divergences are still divergent", () => {
      for (const label of Object.keys(DIVERGENCES)) {
        assert.notEqual(
          memoryOutcomes[label],
          awsOutcomes[label],
          `"${label}" now agrees (${awsOutcomes[label]}): move it into CHECKS`,
        );
      }
    });
  } finally {
    aws.close();
    await m.stop();
  }
});
