import assert from "node:assert/strict";
import { toS3Error } from "./aws_object_client.ts";
import { readBody } from "./body_reader.ts";

const ctx = { operation: "GetObject", bucket: "bkt", key: "dir/file" };

function streamOf(...chunks: number[][]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => new Uint8Array(c)));
}

Deno.test("readBody() fills a buffer of the announced length", async () => {
  const body = await readBody(streamOf([1, 2], [3], [4, 5]), 5);
  assert.deepEqual([...body], [1, 2, 3, 4, 5]);
  assert.equal(body.buffer.byteLength, 5);
});

Deno.test("readBody() joins chunks when the length is unknown", async () => {
  const body = await readBody(streamOf([1], [2, 3]), undefined);
  assert.deepEqual([...body], [1, 2, 3]);
});

Deno.test("readBody() rejects a body shorter than Content-Length as a network error", async () => {
  const err = await readBody(streamOf([1, 2]), 4).catch((e) => e);
  assert.equal(toS3Error(err, ctx).code, "NetworkError");
});

Deno.test("readBody() rejects a body longer than Content-Length", async () => {
  const err = await readBody(streamOf([1, 2, 3]), 2).catch((e) => e);
  assert.ok(err instanceof Error);
  assert.equal(toS3Error(err, ctx).code, "NetworkError");
});

/** A byte stream (what the fetch handler returns), so readBody() takes its BYOB path. */
function byteStreamOf(...chunks: number[][]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      if (i < chunks.length) c.enqueue(new Uint8Array(chunks[i++]));
      else {
        c.close();
        c.byobRequest?.respond(0);
      }
    },
  });
}

Deno.test("readBody() reads a byte stream straight into one buffer of the announced length", async () => {
  const body = await readBody(byteStreamOf([1, 2], [3], [4, 5]), 5);
  assert.deepEqual([...body], [1, 2, 3, 4, 5]);
  assert.equal(body.byteLength, 5);
});

Deno.test("readBody() rejects a byte stream shorter or longer than Content-Length", async () => {
  const short = await readBody(byteStreamOf([1, 2]), 4).catch((e) => e);
  assert.match(String(short), /ended after 2 of 4 bytes/);
  assert.equal(toS3Error(short, ctx).code, "NetworkError");
  const long = await readBody(byteStreamOf([1, 2], [3]), 2).catch((e) => e);
  assert.match(String(long), /longer than Content-Length 2/);
  assert.equal(toS3Error(long, ctx).code, "NetworkError");
});

Deno.test("readBody() returns an empty buffer for a missing body", async () => {
  assert.equal((await readBody(undefined, 0)).byteLength, 0);
});
