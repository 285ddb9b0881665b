/**
 * An HTTP handler for the AWS SDK on Deno's native `fetch`.
 *
 * Why not the SDK's Node handler: on Deno, `node:http` is a compatibility
 * layer in JavaScript, while `fetch` runs in Rust (hyper). Measured here with
 * concurrent 8 MiB ranged GETs against a local MinIO, `fetch` moved about
 * 1.0 GiB/s at ~1.1 CPU-seconds per GiB; `node:http` with keep-alive agents
 * about 0.6 GiB/s at ~1.7 CPU-seconds per GiB.
 *
 * What it takes care of:
 * - one `Deno.HttpClient` per handler: HTTP/1.1 only (S3 scales by
 *   connections, not by multiplexing streams onto one), extra CA
 *   certificates, an idle pool as large as the connection limit;
 * - a connection limit: at most `maxConnections` requests are in flight,
 *   each holding its slot until its response body is consumed or cancelled;
 * - `Accept-Encoding: identity`, because `fetch` would otherwise transparently
 *   decompress objects stored with `Content-Encoding: gzip`;
 * - timeouts: for the response headers, and for inactivity while reading the
 *   body;
 * - transport failures leave as `TransportError` with a Node-style `code`
 *   (ECONNREFUSED, ENOTFOUND, …), which `toS3Error()` maps to NetworkError.
 *
 * Limits of `fetch` the caller must route around: URL parsing resolves "."
 * and ".." path segments (so keys containing them must use another
 * handler), and WHATWG "bad ports" are refused (`isFetchBlockedPort()`).
 *
 * @module
 */

/** The parts of the SDK's `HttpRequest` this handler reads. */
export interface SdkHttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null | undefined>;
  headers: Record<string, string>;
  body?: unknown;
}

/** The shape of the SDK's `HttpResponse`. */
export interface SdkHttpResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array> | undefined;
}

export interface FetchHttpHandlerOptions {
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caCerts?: string[];
  maxConnections: number;
  /** Fail a request whose response headers take longer than this. */
  responseTimeoutMs: number;
  /** Fail a body read that sees no data for this long. */
  bodyIdleTimeoutMs: number;
}

/**
 * A failure below HTTP: connect, DNS, TLS, reset or timeout. Exported for
 * the tests, which check the code a failure carries.
 */
export class TransportError extends Error {
  override readonly name = "TransportError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Ports `fetch` refuses to connect to (the WHATWG "bad port" list, above 1023 and well-known below). */
export function isFetchBlockedPort(port: number): boolean {
  if (port === 80 || port === 443) return false;
  if (port < 1024) return true;
  return [1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6679, 6697, 10080]
    .includes(port) || (port >= 6665 && port <= 6669);
}

/** True when the URL parser would rewrite this key's path ("." or ".." segments). */
export function hasDotSegment(key: string): boolean {
  return key.split("/").some((s) => s === "." || s === "..");
}

export class FetchHttpHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  readonly #client: Deno.HttpClient;
  readonly #slots: Semaphore;
  readonly #options: FetchHttpHandlerOptions;

  constructor(options: FetchHttpHandlerOptions) {
    this.#options = options;
    this.#slots = new Semaphore(options.maxConnections);
    this.#client = Deno.createHttpClient({
      http1: true,
      http2: false,
      poolMaxIdlePerHost: options.maxConnections,
      ...(options.caCerts ? { caCerts: options.caCerts } : {}),
    });
  }

  async handle(
    request: SdkHttpRequest,
    { abortSignal }: { abortSignal?: AbortSignal } = {},
  ): Promise<{ response: SdkHttpResponse }> {
    if (abortSignal?.aborted) throw abortSignal.reason ?? abortError();
    await this.#slots.acquire(abortSignal);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.#slots.release();
      }
    };

    const headersTimer = new AbortController();
    const timer = setTimeout(
      () =>
        headersTimer.abort(
          new TransportError("ETIMEDOUT", "Timed out waiting for the response headers"),
        ),
      this.#options.responseTimeoutMs,
    );
    const signal = abortSignal
      ? AbortSignal.any([abortSignal, headersTimer.signal])
      : headersTimer.signal;

    let res: Response;
    try {
      res = await fetch(buildUrl(request), {
        method: request.method,
        headers: fetchHeaders(request.headers),
        body: fetchBody(request.body),
        signal,
        client: this.#client,
        redirect: "manual",
      });
    } catch (err) {
      release();
      if (abortSignal?.aborted) throw abortSignal.reason ?? abortError();
      if (headersTimer.signal.aborted) throw headersTimer.signal.reason;
      throw classifyFetchError(err);
    } finally {
      clearTimeout(timer);
    }

    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      headers[name] = value;
    });
    let body: ReadableStream<Uint8Array> | undefined;
    if (res.body) {
      body = guardBody(res.body, this.#options.bodyIdleTimeoutMs, abortSignal, release);
    } else {
      release();
    }
    return { response: { statusCode: res.status, reason: res.statusText, headers, body } };
  }

  updateHttpClientConfig(): void {
    // Configuration is fixed at construction.
  }

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.#client.close();
  }
}

/**
 * Wraps a response body: releases the connection slot when the body ends,
 * fails or is cancelled, fails reads that stall, and turns read errors into
 * `TransportError`s.
 *
 * The wrapper is a byte stream, and when the source is one too (Deno's
 * `fetch` bodies are) a BYOB read is passed through: the socket's bytes land
 * in the caller's buffer with no chunk allocated per read, which is most of
 * the garbage a large GET makes otherwise.
 */
function guardBody(
  source: ReadableStream<Uint8Array>,
  idleTimeoutMs: number,
  abortSignal: AbortSignal | undefined,
  release: () => void,
): ReadableStream<Uint8Array> {
  let byob: ReadableStreamBYOBReader | undefined;
  let plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    plain = source.getReader();
  }
  const cancelSource = (reason: unknown) => (byob ?? plain)!.cancel(reason).catch(() => {});
  let lastActivity = Date.now();
  let stalled: TransportError | undefined;
  let finished = false;
  // One timer per idle period rather than per chunk: chunks arrive every few microseconds.
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number) => {
    watchdog = setTimeout(() => {
      const idle = Date.now() - lastActivity;
      if (idle < idleTimeoutMs) return arm(idleTimeoutMs - idle);
      stalled = new TransportError("ETIMEDOUT", "Response body stalled");
      // Also frees the connection slot of a body nobody reads any more.
      finish(stalled);
    }, ms);
  };
  arm(idleTimeoutMs);
  const finish = (cancelReason?: unknown) => {
    if (finished) return;
    finished = true;
    clearTimeout(watchdog);
    if (cancelReason !== undefined) cancelSource(cancelReason);
    release();
  };
  return new ReadableStream({
    type: "bytes",
    async pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest;
      // The caller's buffer, when it brought one (a BYOB read).
      const view = request?.view
        ? new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength)
        : undefined;
      try {
        // The source fills (and transfers) the caller's view, or a chunk of its own.
        const { done, value } = view && byob ? await byob.read(view) : await readChunk(byob, plain);
        if (stalled) throw stalled;
        if (done) {
          finish();
          controller.close();
          // A pending BYOB read settles only with a response, even an empty one. Without a
          // value the source was cancelled, and so was this stream: close() threw already.
          if (request && value) request.respondWithNewView(value);
          else if (request && !byob) request.respond(0);
          return;
        }
        lastActivity = Date.now();
        if (!request || !view) controller.enqueue(value);
        else if (byob) request.respondWithNewView(value);
        else {
          // A plain source under a BYOB read: copy what fits, queue the rest.
          const n = Math.min(view.byteLength, value.byteLength);
          view.set(value.subarray(0, n));
          request.respond(n);
          if (n < value.byteLength) controller.enqueue(value.slice(n));
        }
      } catch (err) {
        const reason = abortSignal?.aborted
          ? (abortSignal.reason ?? abortError())
          : err instanceof TransportError
          ? err
          : classifyFetchError(err);
        finish(reason);
        controller.error(reason);
      }
    },
    cancel(reason) {
      finish(reason ?? "cancelled");
    },
  }, { highWaterMark: 0 });
}

/** A default-mode read: from the plain reader, or a fresh 64 KiB buffer through the BYOB one. */
function readChunk(
  byob: ReadableStreamBYOBReader | undefined,
  plain: ReadableStreamDefaultReader<Uint8Array> | undefined,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (plain) return plain.read();
  return byob!.read(new Uint8Array(CHUNK_SIZE));
}

/** Buffer size for reads of a body by a reader that brings no buffer. */
const CHUNK_SIZE = 64 * 1024;

function buildUrl(request: SdkHttpRequest): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(request.query ?? {})) {
    if (value === undefined) continue;
    const k = encodeQueryComponent(name);
    if (value === null) parts.push(k);
    else if (Array.isArray(value)) {
      for (const v of value) parts.push(`${k}=${encodeQueryComponent(v)}`);
    } else parts.push(`${k}=${encodeQueryComponent(value)}`);
  }
  const port = request.port ? `:${request.port}` : "";
  const query = parts.length ? `?${parts.join("&")}` : "";
  // The SDK has already percent-encoded the path.
  return `${request.protocol}//${request.hostname}${port}${request.path}${query}`;
}

/** RFC 3986 encoding, which is what S3 decodes when it checks the signature. */
function encodeQueryComponent(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Headers `fetch` computes itself (or must not see) are dropped. */
const DROPPED_HEADERS = new Set([
  "host",
  "content-length",
  "expect",
  "transfer-encoding",
  "connection",
]);

function fetchHeaders(headers: Record<string, string>): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (!DROPPED_HEADERS.has(name.toLowerCase())) out.set(name, value);
  }
  out.set("accept-encoding", "identity");
  return out;
}

function fetchBody(body: unknown): BodyInit | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string" || body instanceof Uint8Array) return body as BodyInit;
  if (body instanceof ArrayBuffer || body instanceof ReadableStream) return body;
  throw new TypeError(`Unsupported request body type "${Object.prototype.toString.call(body)}"`);
}

/**
 * Gives a `fetch` rejection a Node-style code from Deno's (hyper's)
 * description. Exported for its unit test: most of these failures (DNS,
 * reset, bad certificates) cannot be provoked on a test server.
 */
export function classifyFetchError(err: unknown): TransportError | Error {
  if (err instanceof TransportError) return err;
  if (err instanceof DOMException && err.name === "AbortError") return err;
  const text = describe(err);
  const rules: [RegExp, string][] = [
    [/connection refused/i, "ECONNREFUSED"],
    [/dns error|failed to lookup|name or service not known|no address/i, "ENOTFOUND"],
    [/connection reset/i, "ECONNRESET"],
    [/broken pipe/i, "EPIPE"],
    [/timed out|timeout/i, "ETIMEDOUT"],
    [/unreachable/i, "EHOSTUNREACH"],
    [/certificate|tls|ssl|handshake|invalid peer/i, "ERR_TLS_HANDSHAKE"],
    [/blocked/i, "ERR_BLOCKED_PORT"],
  ];
  const code = rules.find(([re]) => re.test(text))?.[1] ?? "ENETWORK";
  return new TransportError(code, `HTTP transport failed: ${code}`);
}

function describe(err: unknown, depth = 0): string {
  if (depth > 4 || err === undefined || err === null) return "";
  if (err instanceof Error) return `${err.name} ${err.message} ${describe(err.cause, depth + 1)}`;
  return String(err);
}

function abortError(): Error {
  return new DOMException("The operation was aborted", "AbortError");
}

/** A counting semaphore with FIFO waiters. */
class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason ?? abortError());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}
