import assert from "node:assert/strict";
import { Errno, FsError } from "./api.ts";
import { Upload } from "./upload.ts";
import { MemoryObjectClient } from "../s3/memory_object_client.ts";

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
