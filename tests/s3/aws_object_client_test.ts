/**
 * `AwsObjectClient` against a real MinIO started by the test harness: every
 * interface method, conditional requests, multipart uploads, credentials and
 * transport failures. Each test gets its own server.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  AwsObjectClient,
  type AwsObjectClientOptions,
} from "../../internal/s3/aws_object_client.ts";
import {
  type Credentials,
  isS3Error,
  type S3ClientConfig,
  type S3ErrorCode,
} from "../../internal/s3/object_client.ts";
import { freePort, minioClientConfig, type MinioServer, startMinio } from "../support/mod.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

async function withMinio(
  fn: (c: AwsObjectClient, m: MinioServer) => Promise<void>,
  opts: { tls?: boolean; client?: AwsObjectClientOptions } = {},
): Promise<void> {
  const m = await startMinio({ tls: opts.tls });
  const c = new AwsObjectClient(minioClientConfig(m), opts.client);
  try {
    await fn(c, m);
  } finally {
    c.close();
    await m.stop();
  }
}

async function rejectsWith(p: Promise<unknown>, code: S3ErrorCode): Promise<Error> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, but the call succeeded`),
    (e: unknown) => e,
  );
  assert.ok(isS3Error(err), `expected an S3Error, got ${err}`);
  assert.equal(err.code, code, err.message);
  return err;
}

/** Byte equality without node:assert's element-by-element diffing, which is slow on MiBs. */
function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(actual.byteLength, expected.byteLength, "length differs");
  for (let i = 0; i < actual.byteLength; i++) {
    if (actual[i] !== expected[i]) assert.fail(`bytes differ at offset ${i}`);
  }
}

function pattern(size: number, seed = 0): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

for (const transport of ["fetch", "node"] as const) {
  Deno.test(`AwsObjectClient (${transport}) puts, heads, gets and deletes objects`, async () => {
    await withMinio(async (c) => {
      await c.createBucket("data");
      const body = pattern(100_000);
      const { etag } = await c.putObject("data", "dir/file.bin", body);
      assert.match(etag, /^".+"$/);

      const info = await c.headObject("data", "dir/file.bin");
      assert.ok(info);
      assert.equal(info.key, "dir/file.bin");
      assert.equal(info.size, body.byteLength);
      assert.equal(info.etag, etag);

      const got = await c.getObject("data", "dir/file.bin");
      assertBytes(got.body, body);
      assert.equal(got.etag, etag);
      assert.equal(got.objectSize, body.byteLength);

      await c.deleteObject("data", "dir/file.bin");
      assert.equal(await c.headObject("data", "dir/file.bin"), null);
      await rejectsWith(c.getObject("data", "dir/file.bin"), "NoSuchKey");
    }, { client: { transport } });
  });

  Deno.test(`AwsObjectClient (${transport}) reads byte ranges and reports the object size`, async () => {
    await withMinio(async (c) => {
      await c.createBucket("data");
      const body = pattern(10_000, 7);
      await c.putObject("data", "obj", body);

      const mid = await c.getObject("data", "obj", { range: { start: 1000, end: 3000 } });
      assertBytes(mid.body, body.subarray(1000, 3000));
      assert.equal(mid.objectSize, 10_000);

      const tail = await c.getObject("data", "obj", { range: { start: 9_990, end: 20_000 } });
      assertBytes(tail.body, body.subarray(9_990));

      const empty = await c.getObject("data", "obj", { range: { start: 500, end: 500 } });
      assert.equal(empty.body.byteLength, 0);
      assert.equal(empty.objectSize, 10_000);

      await rejectsWith(
        c.getObject("data", "obj", { range: { start: 10_000, end: 10_001 } }),
        "InvalidRange",
      );
    }, { client: { transport } });
  });
}

Deno.test("AwsObjectClient manages buckets and maps their errors", async () => {
  await withMinio(async (c) => {
    await c.createBucket("alpha");
    await c.headBucket("alpha");
    await rejectsWith(c.createBucket("alpha"), "BucketAlreadyOwnedByYou");
    await rejectsWith(c.headBucket("missing-bucket"), "NoSuchBucket");
    await rejectsWith(c.createBucket("Not_Valid"), "InvalidBucketName");

    await c.putObject("alpha", "k", enc.encode("x"));
    await rejectsWith(c.deleteBucket("alpha"), "BucketNotEmpty");
    await c.deleteObject("alpha", "k");
    await c.deleteBucket("alpha");
    await rejectsWith(c.headBucket("alpha"), "NoSuchBucket");
    await rejectsWith(c.deleteBucket("alpha"), "NoSuchBucket");
  });
});

Deno.test("AwsObjectClient maps a missing bucket on object calls to NoSuchBucket", async () => {
  await withMinio(async (c) => {
    await rejectsWith(c.getObject("nowhere", "k"), "NoSuchBucket");
    await rejectsWith(c.putObject("nowhere", "k", enc.encode("x")), "NoSuchBucket");
    await rejectsWith(c.listObjects("nowhere"), "NoSuchBucket");
  });
});

Deno.test("AwsObjectClient.deleteObject() succeeds for a key that does not exist", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    await c.deleteObject("data", "never-written");
  });
});

Deno.test("AwsObjectClient.getObject() with ifMatch fails after the object is overwritten", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    const first = await c.putObject("data", "obj", enc.encode("version one"));
    const ok = await c.getObject("data", "obj", {
      ifMatch: first.etag,
      range: { start: 0, end: 7 },
    });
    assert.equal(dec.decode(ok.body), "version");

    await c.putObject("data", "obj", enc.encode("version two!"));
    await rejectsWith(c.getObject("data", "obj", { ifMatch: first.etag }), "PreconditionFailed");
    await rejectsWith(
      c.getObject("data", "obj", { ifMatch: first.etag, range: { start: 0, end: 0 } }),
      "PreconditionFailed",
    );
  });
});

Deno.test("AwsObjectClient.putObject() with ifNoneMatch refuses to replace an existing key", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    await c.putObject("data", "obj", enc.encode("first"), { ifNoneMatch: true });
    await rejectsWith(
      c.putObject("data", "obj", enc.encode("second"), { ifNoneMatch: true }),
      "PreconditionFailed",
    );
    assert.equal(dec.decode((await c.getObject("data", "obj")).body), "first");
  });
});

Deno.test("AwsObjectClient.putObject() applies the storage class", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    await c.putObject("data", "obj", enc.encode("x"), { storageClass: "STANDARD" });
    const info = await c.headObject("data", "obj");
    assert.equal(info?.size, 1);
  });
});

Deno.test("AwsObjectClient.listObjects() honours prefix, delimiter, pages and startAfter", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    const keys = ["a/1", "a/2", "a/sub/3", "b", "c/4", "sp ace+plus/ü", "tab\there"];
    for (const k of keys) await c.putObject("data", k, enc.encode(k));

    const all = await c.listObjects("data");
    assert.deepEqual(all.objects.map((o) => o.key), [...keys].sort());
    assert.equal(all.nextContinuationToken, undefined);
    assert.equal(all.objects.find((o) => o.key === "b")?.size, 1);

    const top = await c.listObjects("data", { delimiter: "/" });
    assert.deepEqual(top.objects.map((o) => o.key), ["b", "tab\there"]);
    assert.deepEqual(top.commonPrefixes, ["a/", "c/", "sp ace+plus/"]);

    const underA = await c.listObjects("data", { prefix: "a/", delimiter: "/" });
    assert.deepEqual(underA.objects.map((o) => o.key), ["a/1", "a/2"]);
    assert.deepEqual(underA.commonPrefixes, ["a/sub/"]);

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await c.listObjects("data", { maxKeys: 3, continuationToken: token });
      seen.push(...page.objects.map((o) => o.key));
      token = page.nextContinuationToken;
      pages++;
    } while (token);
    assert.deepEqual(seen, [...keys].sort());
    assert.equal(pages, 3);

    const after = await c.listObjects("data", { startAfter: "b" });
    assert.deepEqual(after.objects.map((o) => o.key), ["c/4", "sp ace+plus/ü", "tab\there"]);
  });
});

Deno.test("AwsObjectClient completes a multipart upload of 5 MiB parts", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    const parts = [pattern(5 * MiB, 1), pattern(5 * MiB, 2), pattern(1234, 3)];
    const uploadId = await c.createMultipartUpload("data", "big");
    const etags: string[] = [];
    for (const [i, part] of parts.entries()) {
      etags.push(await c.uploadPart("data", "big", uploadId, i + 1, part));
    }
    const { etag } = await c.completeMultipartUpload(
      "data",
      "big",
      uploadId,
      etags.map((e, i) => ({ partNumber: i + 1, etag: e })),
    );
    assert.match(etag, /-3"$/);

    const info = await c.headObject("data", "big");
    assert.equal(info?.size, 10 * MiB + 1234);
    const across = await c.getObject("data", "big", {
      range: { start: 5 * MiB - 10, end: 5 * MiB + 10 },
    });
    assertBytes(across.body.subarray(0, 10), parts[0].subarray(5 * MiB - 10));
    assertBytes(across.body.subarray(10), parts[1].subarray(0, 10));
    const whole = await c.getObject("data", "big");
    assertBytes(whole.body.subarray(10 * MiB), parts[2]);
  });
});

Deno.test("AwsObjectClient maps multipart failures to EntityTooSmall, InvalidPart and NoSuchUpload", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    const small = await c.createMultipartUpload("data", "small");
    const e1 = await c.uploadPart("data", "small", small, 1, pattern(1024));
    const e2 = await c.uploadPart("data", "small", small, 2, pattern(1024));
    await rejectsWith(
      c.completeMultipartUpload("data", "small", small, [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: e2 },
      ]),
      "EntityTooSmall",
    );

    await rejectsWith(
      c.completeMultipartUpload("data", "small", small, [
        { partNumber: 1, etag: '"00000000000000000000000000000000"' },
      ]),
      "InvalidPart",
    );

    await c.abortMultipartUpload("data", "small", small);
    await rejectsWith(c.uploadPart("data", "small", small, 3, pattern(10)), "NoSuchUpload");
    await rejectsWith(c.abortMultipartUpload("data", "small", "no-such-upload-id"), "NoSuchUpload");
  });
});

Deno.test("AwsObjectClient.completeMultipartUpload() with ifNoneMatch refuses an existing key", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    await c.putObject("data", "taken", enc.encode("already here"));
    const uploadId = await c.createMultipartUpload("data", "taken");
    const etag = await c.uploadPart("data", "taken", uploadId, 1, pattern(100));
    await rejectsWith(
      c.completeMultipartUpload("data", "taken", uploadId, [{ partNumber: 1, etag }], {
        ifNoneMatch: true,
      }),
      "PreconditionFailed",
    );
    assert.equal(dec.decode((await c.getObject("data", "taken")).body), "already here");
  });
});

Deno.test("AwsObjectClient stores and reads bucket tags", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    assert.deepEqual(await c.getBucketTagging("data"), {});
    await c.putBucketTagging("data", { volume: "pv-1", capacity: "1073741824" });
    assert.deepEqual(await c.getBucketTagging("data"), { volume: "pv-1", capacity: "1073741824" });
    // (MinIO answers GetBucketTagging on a missing bucket with NoSuchTagSet, so only the put is checked.)
    await rejectsWith(c.putBucketTagging("missing-bucket", { a: "b" }), "NoSuchBucket");
  });
});

Deno.test("AwsObjectClient reports AccessDenied for a wrong secret without revealing it", async () => {
  await withMinio(async (_c, m) => {
    const secret = "not-the-right-secret-value";
    const bad = new AwsObjectClient({
      ...minioClientConfig(m),
      credentials: { accessKeyId: m.accessKeyId, secretAccessKey: secret },
    });
    const unknown = new AwsObjectClient({
      ...minioClientConfig(m),
      credentials: { accessKeyId: "nobody-here", secretAccessKey: secret },
    });
    try {
      const calls = [
        () => bad.headBucket("data"),
        () => bad.getObject("data", "k"),
        () => bad.listObjects("data"),
        () => unknown.putObject("data", "k", enc.encode("x")),
        () => unknown.headObject("data", "k"),
      ];
      for (const call of calls) {
        const err = await rejectsWith(call(), "AccessDenied");
        assert.ok(!err.message.includes(secret), err.message);
        assert.ok(!err.message.includes(m.secretAccessKey), err.message);
      }
    } finally {
      bad.close();
      unknown.close();
    }
  });
});

Deno.test("AwsObjectClient fails fast with NetworkError when nothing listens", async () => {
  for (const transport of ["fetch", "node"] as const) {
    const c = new AwsObjectClient({
      endpointUrl: `http://127.0.0.1:${freePort()}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "someone", secretAccessKey: "some-secret" },
      maxAttempts: 1,
    }, { transport });
    try {
      const err = await rejectsWith(c.headBucket("data"), "NetworkError");
      assert.match(err.message, /ECONNREFUSED/);
    } finally {
      c.close();
    }
  }
});

Deno.test("AwsObjectClient maps an aborted signal to Aborted", async () => {
  await withMinio(async (c) => {
    await c.createBucket("data");
    await c.putObject("data", "obj", pattern(1000));
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(c.getObject("data", "obj", { signal: ac.signal }), "Aborted");
    await rejectsWith(c.headObject("data", "obj", { signal: ac.signal }), "Aborted");
    // The client keeps working for other callers.
    assert.equal((await c.getObject("data", "obj")).body.byteLength, 1000);
  });
});

Deno.test("AwsObjectClient uses rotated credentials from credentialsProvider on the next request", async () => {
  await withMinio(async (_c, m) => {
    const good: Credentials = { accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey };
    let current: Credentials = {
      accessKeyId: m.accessKeyId,
      secretAccessKey: "stale-secret-value",
    };
    let calls = 0;
    const config: S3ClientConfig = {
      ...minioClientConfig(m),
      credentials: undefined,
      credentialsProvider: () => {
        calls++;
        return Promise.resolve(current);
      },
    };
    // A long cache window: only the AccessDenied invalidation can make the new key visible.
    const c = new AwsObjectClient(config, { credentialsCacheMs: 3_600_000 });
    try {
      const err = await rejectsWith(c.createBucket("data"), "AccessDenied");
      assert.ok(!err.message.includes("stale-secret-value"));
      current = good;
      await c.createBucket("data");
      await c.headBucket("data");
      assert.equal(calls, 2);
    } finally {
      c.close();
    }
  });
});

Deno.test("AwsObjectClient asks credentialsProvider again once its cache window is over", async () => {
  await withMinio(async (_c, m) => {
    let calls = 0;
    const c = new AwsObjectClient({
      ...minioClientConfig(m),
      credentials: undefined,
      credentialsProvider: () => {
        calls++;
        return Promise.resolve({ accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey });
      },
    }, { credentialsCacheMs: 0 });
    try {
      await c.createBucket("data");
      await c.headBucket("data");
      await c.listObjects("data");
      // The SDK may ask more than once per request; what matters is that it asks for each one.
      assert.ok(calls >= 3, `provider called ${calls} times for 3 requests`);
    } finally {
      c.close();
    }
  });
});

Deno.test("AwsObjectClient talks HTTPS to an endpoint signed by the configured CA bundle", async () => {
  await withMinio(async (c, m) => {
    await c.createBucket("secure");
    await c.putObject("secure", "k", enc.encode("over tls"));
    assert.equal(dec.decode((await c.getObject("secure", "k")).body), "over tls");

    const node = new AwsObjectClient(minioClientConfig(m), { transport: "node" });
    const untrusting = new AwsObjectClient({
      ...minioClientConfig(m),
      caBundlePath: undefined,
      maxAttempts: 1,
    });
    try {
      assert.equal(dec.decode((await node.getObject("secure", "k")).body), "over tls");
      await rejectsWith(untrusting.headBucket("secure"), "NetworkError");
    } finally {
      node.close();
      untrusting.close();
    }
  }, { tls: true });
});

Deno.test("AwsObjectClient serves many concurrent ranged reads over a bounded pool", async () => {
  await withMinio(async (_c, m) => {
    const c = new AwsObjectClient({ ...minioClientConfig(m), maxConnections: 4 });
    try {
      await c.createBucket("data");
      const body = pattern(4 * MiB, 9);
      await c.putObject("data", "obj", body);
      const chunk = 256 * 1024;
      const reads = Array.from(
        { length: 16 },
        (_, i) => c.getObject("data", "obj", { range: { start: i * chunk, end: (i + 1) * chunk } }),
      );
      const results = await Promise.all(reads);
      for (const [i, r] of results.entries()) {
        assertBytes(r.body, body.subarray(i * chunk, (i + 1) * chunk));
      }
    } finally {
      c.close();
    }
  });
});

Deno.test("AwsObjectClient releases its connection when a read in flight is aborted", async () => {
  await withMinio(async (_c, m) => {
    const c = new AwsObjectClient({ ...minioClientConfig(m), maxConnections: 1 });
    try {
      await c.createBucket("data");
      await c.putObject("data", "big", pattern(16 * MiB, 4));
      for (let i = 0; i < 3; i++) {
        const ac = new AbortController();
        const read = c.getObject("data", "big", { signal: ac.signal });
        setTimeout(() => ac.abort(), i);
        await rejectsWith(read, "Aborted").catch((err) => {
          // A read that finished before the abort is fine too; the point is what follows.
          if (!(err instanceof assert.AssertionError)) throw err;
        });
      }
      // With a single connection slot, a leaked one would make this wait forever.
      const r = await c.getObject("data", "big", { range: { start: 0, end: 10 } });
      assert.equal(r.body.byteLength, 10);
    } finally {
      c.close();
    }
  });
});
