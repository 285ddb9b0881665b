/**
 * The fetch handler against a local HTTP server: bodies through BYOB and
 * default reads, connection slots released however a body ends, stalled
 * bodies failed by the idle timeout.
 */
import assert from "node:assert/strict";
import { FetchHttpHandler, type SdkHttpResponse, TransportError } from "./fetch_http_handler.ts";
import { readBody } from "./aws_object_client.ts";

const SIZE = 3 * 1024 * 1024 + 17;
const payload = new Uint8Array(SIZE).map((_, i) => (i * 7 + 3) & 0xff);

/** Serves `/full` (the payload) and `/stall` (64 KiB, then nothing until the client leaves). */
async function withServer(
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const stalls = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/stall") {
      return new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(payload.slice(0, 65536));
            stalls.add(c);
          },
        }),
        { headers: { "content-length": String(SIZE) } },
      );
    }
    return new Response(payload);
  });
  try {
    await fn(server.addr.port);
  } finally {
    for (const c of stalls) {
      try {
        c.close();
      } catch { /* already gone */ }
    }
    await server.shutdown();
  }
}

function handler(): FetchHttpHandler {
  return new FetchHttpHandler({
    maxConnections: 1,
    responseTimeoutMs: 5000,
    bodyIdleTimeoutMs: 300,
  });
}

function get(
  h: FetchHttpHandler,
  port: number,
  path: string,
): Promise<{ response: SdkHttpResponse }> {
  return h.handle({
    method: "GET",
    protocol: "http:",
    hostname: "127.0.0.1",
    port,
    path,
    headers: {},
  });
}

/** With one connection slot, a second request completes only if the first released its slot. */
async function slotIsFree(h: FetchHttpHandler, port: number): Promise<void> {
  const { response } = await get(h, port, "/full");
  await readBody(response.body, SIZE);
}

Deno.test("FetchHttpHandler: a body read with BYOB arrives whole, and frees its slot", async () => {
  await withServer(async (port) => {
    const h = handler();
    try {
      const { response } = await get(h, port, "/full");
      assert.equal(response.statusCode, 200);
      const body = await readBody(response.body, Number(response.headers["content-length"]));
      assert.deepEqual(body, payload);
      await slotIsFree(h, port);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler: a body read chunk by chunk arrives whole", async () => {
  await withServer(async (port) => {
    const h = handler();
    try {
      const { response } = await get(h, port, "/full");
      const body = await readBody(response.body, undefined);
      assert.deepEqual(body, payload);
      await slotIsFree(h, port);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler: a cancelled body frees its slot", async () => {
  await withServer(async (port) => {
    const h = handler();
    try {
      const { response } = await get(h, port, "/full");
      const reader = response.body!.getReader({ mode: "byob" });
      const first = await reader.read(new Uint8Array(1024));
      assert.equal(first.done, false);
      await reader.cancel("not needed");
      await slotIsFree(h, port);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler: a stalled body fails with ETIMEDOUT in both read modes", async () => {
  await withServer(async (port) => {
    const h = handler();
    try {
      for (const length of [SIZE, undefined]) {
        const { response } = await get(h, port, "/stall");
        const err = await readBody(response.body, length).catch((e) => e);
        assert.ok(err instanceof TransportError, `${length}: ${err}`);
        assert.equal(err.code, "ETIMEDOUT");
      }
      await slotIsFree(h, port);
    } finally {
      h.destroy();
    }
  });
});
