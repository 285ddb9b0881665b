/**
 * An HTTP-aware fault proxy for what Toxiproxy (TCP only) cannot do: answer
 * S3 requests with `503 SlowDown`, as a throttling S3 does, in bursts the
 * test sets (`burst(n)`: the next n requests); and hold the next request of
 * a kind (`hold(pattern)`, matched on the request line) without forwarding
 * it, so that a test can kill the client at that very step; and stall the
 * answers of a kind (`stall(pattern, bytes, count)`): the head and the
 * first bytes of the body pass, then nothing more, on a connection that
 * stays open: the stalled body a wedged server or middlebox gives. It
 * also counts the requests signed with each access key (`keys()`), so a
 * test can see when rotated credentials are taken up.
 *
 * Each request is made to come on its own connection: the proxy adds
 * `Connection: close` to every request head it forwards (the header is not
 * signed, so SigV4 still verifies), so MinIO closes after each answer and
 * the client's next request passes through the proxy's decision again. A
 * request it refuses has its body read and dropped (by Content-Length),
 * then gets the 503 and the connection closes. Everything else is
 * forwarded byte for byte. Listens on 127.0.0.1; `stop()` closes it all.
 *
 * @module
 */

const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

export interface SlowdownProxy {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** The next `n` requests are answered 503 SlowDown. */
  burst(n: number): void;
  /** Requests answered 503 so far. */
  refused(): number;
  /**
   * Holds the next request whose request line matches `pattern`: it is
   * never forwarded, and its connection closes at `stop()`. Resolves when
   * it has arrived.
   */
  hold(pattern: RegExp): Promise<void>;
  /**
   * The answers of the next `count` requests matching `pattern` stop after
   * `bytes` bytes (head included) until `stop()`. Resolves when the first
   * stall begins. Rules add up; the first that matches a request applies.
   */
  stall(pattern: RegExp, bytes: number, count?: number): Promise<void>;
  /** Answers stalled so far. */
  stalled(): number;
  /**
   * The requests seen per signing access key ID (from the SigV4
   * `Authorization` header): how many, and when the first and last came.
   */
  keys(): Map<string, { requests: number; first: number; last: number }>;
  stop(): Promise<void>;
}

const SLOWDOWN_BODY = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>' +
  "<Message>Please reduce your request rate.</Message></Error>";

function find(buf: Uint8Array, seq: number[]): number {
  outer: for (let i = 0; i + seq.length <= buf.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Passes the first `bytes` bytes, then waits on `stall()` before passing
 * anything more: the reader upstream is not read meanwhile, so TCP's flow
 * control holds the server as a wedged one would be held.
 */
function stallAt(
  bytes: number,
  stall: () => Promise<void>,
): TransformStream<Uint8Array, Uint8Array> {
  let passed = 0;
  let stalled: Promise<void> | undefined;
  return new TransformStream({
    async transform(chunk, out) {
      if (passed >= bytes) return await (stalled ??= stall());
      const n = Math.min(chunk.length, bytes - passed);
      out.enqueue(chunk.subarray(0, n));
      passed += n;
      if (n < chunk.length) await (stalled ??= stall());
    },
  });
}

export function startSlowdownProxy(upstream: { hostname: string; port: number }): SlowdownProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let pending = 0;
  let refused = 0;
  let holding: { pattern: RegExp; arrived: () => void } | undefined;
  const stalling: { pattern: RegExp; bytes: number; left: number; began: () => void }[] = [];
  let stalled = 0;
  const keys = new Map<string, { requests: number; first: number; last: number }>();
  const stopped = Promise.withResolvers<void>();

  const serve = async (client: Deno.Conn) => {
    // The request head, up to its blank line.
    let buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    let end = -1;
    const chunk = new Uint8Array(64 * 1024);
    while (end < 0) {
      const n = await client.read(chunk).catch(() => null);
      if (n === null) return;
      buf = concat(buf, chunk.subarray(0, n));
      end = find(buf, [13, 10, 13, 10]);
    }
    const head = latin1.decode(buf.subarray(0, end));
    let rest = buf.subarray(end + 4);
    const line = head.split("\r\n", 1)[0];
    const key = /\r\nauthorization:[^\r\n]*Credential=([^/\s]+)\//i.exec(head)?.[1];
    if (key) {
      const now = Date.now();
      const k = keys.get(key) ?? { requests: 0, first: now, last: now };
      k.requests++;
      k.last = now;
      keys.set(key, k);
    }
    if (holding?.pattern.test(line)) {
      const arrived = holding.arrived;
      holding = undefined;
      arrived();
      await stopped.promise;
      return;
    }
    if (pending > 0) {
      pending--;
      refused++;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      const expectsContinue = /\r\nexpect:\s*100-continue/i.test(head);
      let left = expectsContinue ? 0 : length - rest.length;
      while (left > 0) {
        const n = await client.read(chunk).catch(() => null);
        if (n === null) return;
        left -= n;
      }
      const body = enc.encode(SLOWDOWN_BODY);
      await client.write(enc.encode(
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n" +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      )).catch(() => {});
      await client.write(body).catch(() => {});
      return;
    }
    const stall = stalling.find((s) => s.left > 0 && s.pattern.test(line));
    if (stall) stall.left--;
    const stallAfter = stall?.bytes ?? Infinity;
    const lines = head.split("\r\n").filter((l) => !/^connection:/i.test(l));
    const upstreamConn = await Deno.connect(upstream).catch(() => null);
    if (!upstreamConn) return;
    conns.add(upstreamConn);
    try {
      await upstreamConn.write(enc.encode(`${lines.join("\r\n")}\r\nConnection: close\r\n\r\n`));
      if (rest.length > 0) await upstreamConn.write(rest);
      rest = new Uint8Array(0);
      await Promise.all([
        client.readable.pipeTo(upstreamConn.writable, { preventClose: true }).catch(() => {}),
        (stallAfter === Infinity
          ? upstreamConn.readable
          : upstreamConn.readable.pipeThrough(stallAt(stallAfter, () => {
            stalled++;
            stall?.began();
            return stopped.promise;
          })))
          .pipeTo(client.writable, { preventClose: true }).catch(() => {}),
      ].map((p) =>
        p.finally(() => {
          try {
            client.close();
          } catch { /* closed */ }
          try {
            upstreamConn.close();
          } catch { /* closed */ }
        })
      ));
    } finally {
      conns.delete(upstreamConn);
    }
  };

  const accepting = (async () => {
    for await (const client of listener) {
      conns.add(client);
      serve(client).catch(() => {}).finally(() => {
        conns.delete(client);
        try {
          client.close();
        } catch { /* closed */ }
      });
    }
  })();

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    burst(n) {
      pending = n;
    },
    refused: () => refused,
    hold(pattern) {
      const arrived = Promise.withResolvers<void>();
      holding = { pattern, arrived: arrived.resolve };
      return arrived.promise;
    },
    stall(pattern, bytes, count = 1) {
      const began = Promise.withResolvers<void>();
      stalling.push({ pattern, bytes, left: count, began: began.resolve });
      return began.promise;
    },
    stalled: () => stalled,
    keys: () => keys,
    async stop() {
      stopped.resolve();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting.catch(() => {});
    },
  };
}
