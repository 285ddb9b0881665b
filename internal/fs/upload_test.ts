import assert from "node:assert/strict";
import { Errno, FsError } from "./api.ts";
import { Upload } from "./upload.ts";
import { MemoryObjectClient } from "../s3/memory_object_client.ts";
import { MemoryBudget } from "./prefetch/memory_budget.ts";

async function setup(partSize: number, ifNoneMatch = true) {
  const client = new MemoryObjectClient({ minPartSize: 1 });
  await client.createBucket("bkt");
  const upload = new Upload({ client, bucket: "bkt", key: "k", partSize, ifNoneMatch, put: {} });
  return { client, upload };
}

Deno.test("Upload.write() waits for the previous part before starting another (two parts in memory)", async () => {
  const { client, upload } = await setup(4);
  const gates: (() => void)[] = [];
  client.setBeforeRequest((op) =>
    op === "uploadPart" ? new Promise<void>((r) => gates.push(r)) : undefined
  );
  await upload.write(0, new TextEncoder().encode("aaaa")); // part 1 starts uploading
  let secondDone = false;
  const second = upload.write(4, new TextEncoder().encode("bbbb")).then(() => secondDone = true);
  await new Promise((r) => setTimeout(r, 0));
  // Part 2 is full but must wait for part 1: only one uploadPart request so far.
  assert.equal(client.requestCount("uploadPart"), 1);
  assert.equal(secondDone, false);
  gates.shift()!();
  await second;
  assert.equal(client.requestCount("uploadPart"), 2);
  client.setBeforeRequest(undefined);
  gates.forEach((g) => g());
  const done = await upload.complete();
  assert.equal(done.size, 8);
  assert.equal(new TextDecoder().decode(client.peek("bkt", "k")!), "aaaabbbb");
});

Deno.test("Upload.complete() is idempotent and later writes fail with EBADF", async () => {
  const { client, upload } = await setup(1024);
  await upload.write(0, new TextEncoder().encode("x"));
  const [a, b] = await Promise.all([upload.complete(), upload.complete()]);
  assert.equal(a.etag, b.etag);
  assert.equal(client.requestCount("putObject"), 1);
  await assert.rejects(
    upload.write(1, new Uint8Array(1)),
    (e) => e instanceof FsError && e.errno === Errno.EBADF,
  );
});

Deno.test("Upload.write() past 10,000 parts fails with EFBIG", async () => {
  const { upload } = await setup(1);
  await assert.rejects(
    upload.write(0, new Uint8Array(10_001)),
    (e) => e instanceof FsError && e.errno === Errno.EFBIG,
  );
  assert.equal(upload.state, "failed");
});

Deno.test("Upload.write() keeps up to maxInFlight parts uploading with spare memory, and returns it", async () => {
  const client = new MemoryObjectClient({ minPartSize: 1 });
  await client.createBucket("bkt");
  const spare = new MemoryBudget(8); // room for two borrowed 4-byte parts
  const upload = new Upload({
    client,
    bucket: "bkt",
    key: "k",
    partSize: 4,
    ifNoneMatch: true,
    put: {},
    spare,
    maxInFlight: 4,
  });
  const gates: (() => void)[] = [];
  client.setBeforeRequest((op) =>
    op === "uploadPart" ? new Promise<void>((r) => gates.push(r)) : undefined
  );
  const enc = new TextEncoder();
  // Parts 1-3 start at once: one of the handle's own, two borrowed.
  for (const [i, s] of ["aaaa", "bbbb", "cccc"].entries()) await upload.write(i * 4, enc.encode(s));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(client.requestCount("uploadPart"), 3);
  assert.equal(spare.reserved, 8);
  // Part 4 finds no spare memory: it waits for a part to finish.
  let fourthDone = false;
  const fourth = upload.write(12, enc.encode("dddd")).then(() => fourthDone = true);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(fourthDone, false);
  assert.equal(client.requestCount("uploadPart"), 3);
  client.setBeforeRequest(undefined);
  gates.forEach((g) => g());
  await fourth;
  const done = await upload.complete();
  assert.equal(done.size, 16);
  assert.equal(new TextDecoder().decode(client.peek("bkt", "k")!), "aaaabbbbccccdddd");
  assert.equal(spare.reserved, 0, "borrowed memory is returned");
});

Deno.test("Upload.complete() and abort() after a part failed in the background wait for its abort", async () => {
  const { client, upload } = await setup(4);
  const gates: (() => void)[] = [];
  client.setBeforeRequest((op) =>
    op === "abortMultipartUpload" ? new Promise<void>((r) => gates.push(r)) : undefined
  );
  client.failNext("uploadPart", "ServerError");
  await upload.write(0, new TextEncoder().encode("aaaa")); // part 1 fails in the background
  while (gates.length === 0) await new Promise((r) => setTimeout(r, 0));
  assert.equal(upload.state, "failed");
  let settled = 0;
  const completed = upload.complete().catch((err) => (settled++, err));
  const aborted = upload.abort("unmount").then(() => settled++);
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, 0, "complete() or abort() returned while the abort was in flight");
  assert.equal(client.pendingUploads().length, 1);
  gates.shift()!();
  assert.equal(((await completed) as FsError).errno, Errno.EIO);
  await aborted;
  assert.deepEqual(client.pendingUploads(), []);
});
