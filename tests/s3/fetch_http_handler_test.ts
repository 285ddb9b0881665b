/**
 * `FetchHttpHandler` and `AwsObjectClient` transport behaviour against a
 * local fake HTTP server: what a real S3 cannot be made to do on demand
 * (stall a body, send gzip, echo request headers).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  AwsObjectClient,
  type AwsObjectClientOptions,
} from "../../internal/s3/aws_object_client.ts";
import { readBody } from "../../internal/s3/body_reader.ts";
import { FetchHttpHandler, TransportError } from "../../internal/s3/fetch_http_handler.ts";
import { isS3Error } from "../../internal/s3/object_client.ts";

async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (url: URL) => Promise<void>,
): Promise<void> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    handler,
  );
  try {
    await fn(new URL(`http://127.0.0.1:${server.addr.port}`));
  } finally {
    ac.abort();
    await server.finished;
  }
}

/** A client of the fake server at `url`, failing on the first error. */
function clientOf(url: URL, opts: AwsObjectClientOptions & { userAgentPrefix?: string } = {}) {
  const { userAgentPrefix, ...options } = opts;
  return new AwsObjectClient({
    endpointUrl: url.origin,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "someone", secretAccessKey: "some-secret" },
    maxAttempts: 1,
    ...(userAgentPrefix ? { userAgentPrefix } : {}),
  }, options);
}

function newHandler(
  opts: Partial<{ bodyIdleTimeoutMs: number; maxConnections: number }> = {},
) {
  return new FetchHttpHandler({
    maxConnections: opts.maxConnections ?? 4,
    responseTimeoutMs: 10_000,
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs ?? 10_000,
  });
}

function request(url: URL, path = "/bucket/key") {
  return {
    method: "GET",
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path,
    query: { "x-id": "GetObject", "list-type": "2", flag: null },
    headers: { host: url.host, "content-length": "0", "x-amz-date": "20260101T000000Z" },
  };
}

Deno.test("FetchHttpHandler sends the path, query and headers and never asks for compression", async () => {
  let seen:
    | { url: string; ae: string | null; host: string | null; date: string | null }
    | undefined;
  await withServer((req) => {
    seen = {
      url: req.url,
      ae: req.headers.get("accept-encoding"),
      host: req.headers.get("host"),
      date: req.headers.get("x-amz-date"),
    };
    return new Response("ok");
  }, async (url) => {
    const h = newHandler();
    try {
      const { response } = await h.handle(request(url, "/bucket/a%20b"));
      assert.equal(response.statusCode, 200);
      assert.equal(await new Response(response.body).text(), "ok");
    } finally {
      h.destroy();
    }
    assert.ok(seen);
    assert.equal(new URL(seen.url).pathname, "/bucket/a%20b");
    assert.equal(new URL(seen.url).search, "?x-id=GetObject&list-type=2&flag");
    assert.equal(seen.ae, "identity");
    assert.equal(seen.host, url.host);
    assert.equal(seen.date, "20260101T000000Z");
  });
});

Deno.test("FetchHttpHandler returns gzip-encoded bodies as stored, without decompressing", async () => {
  const raw = new Uint8Array(
    await new Response(
      new Blob(["hello hello hello"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  await withServer(
    () => new Response(raw, { headers: { "content-encoding": "gzip" } }),
    async (url) => {
      const h = newHandler();
      try {
        const { response } = await h.handle(request(url));
        const body = new Uint8Array(await new Response(response.body).arrayBuffer());
        assert.deepEqual(body, raw);
      } finally {
        h.destroy();
      }
    },
  );
});

/**
 * A server whose response sends `first`, announces `length` bytes, then
 * sends nothing more until `fn` is over (so the server can shut down).
 */
async function withStallingServer(
  first: Uint8Array,
  length: number,
  fn: (url: URL) => Promise<void>,
): Promise<void> {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  await withServer(() => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(first);
        stopped.then(() => controller.close());
      },
    });
    return new Response(body, { headers: { "content-length": String(length) } });
  }, async (url) => {
    try {
      await fn(url);
    } finally {
      stop();
    }
  });
}

Deno.test("FetchHttpHandler fails a body that stops sending data", async () => {
  await withStallingServer(new Uint8Array(10), 100, async (url) => {
    const h = newHandler({ bodyIdleTimeoutMs: 200 });
    try {
      const { response } = await h.handle(request(url));
      const err = await new Response(response.body).arrayBuffer().then(() => undefined, (e) => e);
      assert.ok(err !== undefined, "the stalled body was read to the end");
      const cause = err instanceof TransportError ? err : (err as Error).cause;
      assert.ok(cause instanceof TransportError, `unexpected error ${err}`);
      assert.equal(cause.code, "ETIMEDOUT");
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler frees a connection slot when a response body is cancelled", async () => {
  await withServer(() => new Response("0123456789".repeat(1000)), async (url) => {
    const h = newHandler({ maxConnections: 1 });
    try {
      const first = await h.handle(request(url));
      await first.response.body?.cancel();
      // With one slot, this would wait forever if the cancelled body still held it.
      const second = await h.handle(request(url));
      assert.equal((await new Response(second.response.body).text()).length, 10_000);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("AwsObjectClient sends userAgentPrefix at the front of User-Agent on both transports", async () => {
  const agents: string[] = [];
  await withServer((req) => {
    agents.push(req.headers.get("user-agent") ?? "");
    return new Response(null, { status: 200 });
  }, async (url) => {
    for (const transport of ["fetch", "node"] as const) {
      const c = clientOf(url, { userAgentPrefix: "s3csi/1.2.3", transport });
      try {
        await c.headBucket("bucket");
      } finally {
        c.close();
      }
    }
  });
  assert.equal(agents.length, 2);
  for (const ua of agents) assert.match(ua, /^s3csi\/1\.2\.3 \S/);
});

Deno.test("AwsObjectClient maps an unparseable 5xx answer to ServerError", async () => {
  await withServer(
    () => new Response("<html>bad gateway</html>", { status: 502 }),
    async (url) => {
      const c = clientOf(url);
      try {
        const err = await c.getObject("bucket", "key").then(() => undefined, (e) => e);
        assert.ok(isS3Error(err), `unexpected ${err}`);
        assert.equal(err.code, "ServerError");
        assert.equal(err.httpStatus, 502);
      } finally {
        c.close();
      }
    },
  );
});

Deno.test("AwsObjectClient maps 503 SlowDown to Throttled", async () => {
  const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
    "<Message>Please reduce your request rate.</Message></Error>";
  await withServer(
    () => new Response(xml, { status: 503, headers: { "content-type": "application/xml" } }),
    async (url) => {
      const c = clientOf(url);
      try {
        const err = await c.putObject("bucket", "key", new Uint8Array(3)).then(
          () => undefined,
          (e) => e,
        );
        assert.ok(isS3Error(err), `unexpected ${err}`);
        assert.equal(err.code, "Throttled");
        assert.equal(err.transient, true);
      } finally {
        c.close();
      }
    },
  );
});

// BYOB: the handler's body is a byte stream that passes BYOB reads through to fetch's body.

const BIG = 3 * 1024 * 1024 + 17;
const payload = new Uint8Array(BIG).map((_, i) => (i * 7 + 3) & 0xff);

Deno.test("FetchHttpHandler passes a BYOB read through: the body fills the caller's buffer whole", async () => {
  await withServer(() => new Response(payload), async (url) => {
    const h = newHandler({ maxConnections: 1 });
    try {
      const { response } = await h.handle(request(url));
      const memory = new ArrayBuffer(BIG + 1);
      const body = await readBody(response.body, BIG, undefined, memory);
      assert.deepEqual(body, payload);
      assert.ok(memory.detached, "the given memory was not used");
      assert.equal(body.buffer.byteLength, BIG + 1);
      // Chunk by chunk (no length known) still works on the byte stream.
      const again = await h.handle(request(url));
      assert.deepEqual(await readBody(again.response.body, undefined), payload);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler frees the slot of a body cancelled during a BYOB read", async () => {
  await withServer(() => new Response(payload), async (url) => {
    const h = newHandler({ maxConnections: 1 });
    try {
      const first = await h.handle(request(url));
      const reader = first.response.body!.getReader({ mode: "byob" });
      assert.equal((await reader.read(new Uint8Array(1024))).done, false);
      await reader.cancel("not needed");
      const second = await h.handle(request(url));
      assert.deepEqual(await readBody(second.response.body, BIG), payload);
    } finally {
      h.destroy();
    }
  });
});

Deno.test("FetchHttpHandler fails a stalled body under a BYOB read with ETIMEDOUT", async () => {
  await withStallingServer(payload.slice(0, 65536), BIG, async (url) => {
    const h = newHandler({ bodyIdleTimeoutMs: 200, maxConnections: 1 });
    try {
      const { response } = await h.handle(request(url));
      const err = await readBody(response.body, BIG).catch((e) => e);
      assert.ok(err instanceof TransportError, `unexpected error ${err}`);
      assert.equal(err.code, "ETIMEDOUT");
    } finally {
      h.destroy();
    }
  });
});
