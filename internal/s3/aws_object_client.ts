/**
 * `AwsObjectClient`: the production `ObjectClient`, on `@aws-sdk/client-s3`.
 *
 * Design notes:
 *
 * - **Transport.** The SDK's Node HTTP handler runs on Deno's `node:http`.
 *   We hand it our own keep-alive agents so that the socket pool is sized
 *   for the FUSE read path (8–32 concurrent ranged GETs) and so that a custom
 *   CA bundle can be added to the system roots. `Expect: 100-continue` is
 *   turned off: with a known body length it only costs a round trip.
 * - **Checksums.** Request checksums and response validation run only when
 *   the operation requires them. The SDK computes CRC32 in JavaScript, which
 *   on the read path would cost more CPU than the transfer itself; TCP/TLS
 *   and the SigV4 payload hash already protect the bytes in flight.
 * - **Credentials.** Static keys, the standard AWS chain, or a
 *   `credentialsProvider` callback. Callback results are cached for a few
 *   seconds only, and dropped as soon as S3 rejects them, so a rotated secret
 *   takes effect on the next request.
 * - **Errors.** Every failure leaves through `toS3Error()`, the one place
 *   that knows SDK exception names, HTTP statuses and Node/Deno network
 *   error codes. Its messages are built from the operation, bucket, key and
 *   codes only: SDK messages can echo request details, so they are never
 *   copied and the SDK error is not kept as `cause`.
 * - **Bodies.** `getObject` reads the response stream straight into one
 *   buffer preallocated from Content-Length, through a BYOB reader when the
 *   body is a byte stream (it is with the fetch handler): the socket's bytes
 *   are copied once, and no chunk is allocated per read. Measured with 8 MiB
 *   ranged GETs on 2 cores: about 25 % less client CPU per GiB than reading
 *   chunk by chunk.
 *
 * Requires `--allow-net`, `--allow-env` and `--allow-read` (AWS profile files,
 * CA bundle).
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  type CreateBucketCommandInput,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketTaggingCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig as SdkClientConfig,
  type ServerSideEncryption,
  type StorageClass,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import { registerSecret } from "../log/mod.ts";
import { FetchHttpHandler, hasDotSegment, isFetchBlockedPort } from "./fetch_http_handler.ts";
import {
  bodyBufferSize,
  type BucketLocation,
  type CompletedPart,
  type Credentials,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectClient,
  type ObjectInfo,
  type PutOptions,
  type S3ClientConfig,
  S3Error,
  type S3ErrorCode,
} from "./object_client.ts";

/** Socket pool size when the config does not say: above the FUSE read path's peak concurrency. */
const DEFAULT_MAX_CONNECTIONS = 64;
const CONNECT_TIMEOUT_MS = 10_000;
/** fetch transport: response headers must arrive within this (it includes sending the body). */
const RESPONSE_TIMEOUT_MS = 120_000;
/** A request whose socket sees no traffic this long is failed as a network error. */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** How long credentials from `credentialsProvider` are reused. */
const DEFAULT_CREDENTIALS_CACHE_MS = 3_000;

export interface AwsObjectClientOptions {
  /** Reuse window for `credentialsProvider` results; 0 calls the provider for every request. */
  credentialsCacheMs?: number;
  /**
   * HTTP transport: Deno's `fetch` (the default: faster and cheaper in CPU) or
   * `node:http`. Endpoints on ports `fetch` refuses always use `node`.
   */
  transport?: "fetch" | "node";
}

/** What a failed call was doing, for `toS3Error()` messages and 404 handling. */
export interface ErrorContext {
  operation: string;
  bucket?: string;
  key?: string;
  /** The code a bare 404 (no error body, as on HEAD) means for this operation. */
  notFound?: S3ErrorCode;
  signal?: AbortSignal;
}

export class AwsObjectClient implements ObjectClient {
  readonly #config: S3ClientConfig;
  readonly #maxConnections: number;
  readonly #caPem?: string;
  readonly #credentials: SdkClientConfig["credentials"];
  #credentialsCache?: RotatingCredentials;
  /** The client for ordinary requests (fetch transport unless configured otherwise). */
  readonly #client: S3Client;
  /** The node:http client, created on first need (keys fetch cannot address, or by choice). */
  #nodeClient?: S3Client;
  #nodeAgents?: { http: http.Agent; https: https.Agent };
  #closed = false;

  constructor(config: S3ClientConfig, options: AwsObjectClientOptions = {}) {
    this.#config = config;
    this.#maxConnections = config.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (!Number.isInteger(this.#maxConnections) || this.#maxConnections < 1) {
      throw new RangeError(`Invalid maxConnections "${config.maxConnections}": expected >= 1`);
    }
    if (config.caBundlePath) this.#caPem = readCaBundle(config.caBundlePath);

    if (config.credentialsProvider) {
      const cache = new RotatingCredentials(
        config.credentialsProvider,
        options.credentialsCacheMs ?? DEFAULT_CREDENTIALS_CACHE_MS,
      );
      this.#credentialsCache = cache;
      this.#credentials = () => cache.get();
    } else if (config.credentials) {
      registerCredentialSecrets(config.credentials);
      this.#credentials = { ...config.credentials };
    }

    const transport = options.transport ??
      (isFetchBlockedPort(endpointPort(config.endpointUrl)) ? "node" : "fetch");
    if (transport === "fetch") {
      const handler = new FetchHttpHandler({
        maxConnections: this.#maxConnections,
        responseTimeoutMs: RESPONSE_TIMEOUT_MS,
        bodyIdleTimeoutMs: SOCKET_IDLE_TIMEOUT_MS,
        ...(this.#caPem ? { caCerts: [this.#caPem] } : {}),
      });
      // The SDK types its signal with its own AbortSignal interface; the runtime object is the same.
      this.#client = this.#makeClient(handler as unknown as SdkClientConfig["requestHandler"]);
    } else {
      this.#client = this.#node();
    }
  }

  #makeClient(requestHandler: SdkClientConfig["requestHandler"]): S3Client {
    const config = this.#config;
    const sdkConfig: SdkClientConfig & { expectContinueHeader: boolean } = {
      region: config.region,
      forcePathStyle: config.forcePathStyle ?? true,
      requestHandler,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // With a known body length, 100-continue only costs a round trip.
      expectContinueHeader: false,
    };
    if (config.endpointUrl) sdkConfig.endpoint = config.endpointUrl;
    if (this.#credentials) sdkConfig.credentials = this.#credentials;
    // Undefined lets the SDK read AWS_MAX_ATTEMPTS / the profile, as the AWS CLI does.
    if (config.maxAttempts !== undefined) sdkConfig.maxAttempts = config.maxAttempts;
    const client = new S3Client(sdkConfig);

    if (config.userAgentPrefix) {
      const prefix = config.userAgentPrefix;
      // User-Agent is not signed, so it can be rewritten after the SDK sets it.
      client.middlewareStack.add(
        (next) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) {
            const current = request.headers["user-agent"];
            request.headers["user-agent"] = current ? `${prefix} ${current}` : prefix;
          }
          return next(args);
        },
        { step: "finalizeRequest", name: "s3csiUserAgentPrefix", priority: "low" },
      );
    }
    return client;
  }

  /** The SDK client on node:http keep-alive agents. */
  #node(): S3Client {
    if (!this.#nodeClient) {
      const agentOptions = {
        keepAlive: true,
        keepAliveMsecs: 1_000,
        maxSockets: this.#maxConnections,
        maxFreeSockets: this.#maxConnections,
      };
      this.#nodeAgents = {
        http: new http.Agent(agentOptions),
        https: new https.Agent({
          ...agentOptions,
          // Node replaces the system roots when `ca` is given; keep them.
          ...(this.#caPem ? { ca: [...tls.rootCertificates, this.#caPem] } : {}),
        }),
      };
      this.#nodeClient = this.#makeClient({
        httpAgent: this.#nodeAgents.http,
        httpsAgent: this.#nodeAgents.https,
        connectionTimeout: CONNECT_TIMEOUT_MS,
        socketTimeout: SOCKET_IDLE_TIMEOUT_MS,
      });
    }
    return this.#nodeClient;
  }

  /** Closes pooled connections. The client must not be used afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
    if (this.#nodeClient && this.#nodeClient !== this.#client) this.#nodeClient.destroy();
    this.#nodeAgents?.http.destroy();
    this.#nodeAgents?.https.destroy();
  }

  async createBucket(bucket: string, opts: BucketLocation = {}): Promise<void> {
    const input: CreateBucketCommandInput = { Bucket: bucket };
    // us-east-1 is the one region S3 refuses as an explicit location constraint.
    if (opts.region && opts.region !== "us-east-1") {
      input.CreateBucketConfiguration = {
        LocationConstraint: opts.region as NonNullable<
          CreateBucketCommandInput["CreateBucketConfiguration"]
        >["LocationConstraint"],
      };
    }
    await this.#send(
      { operation: "CreateBucket", bucket },
      (c, o) => c.send(new CreateBucketCommand(input), o),
    );
  }

  async headBucket(bucket: string): Promise<void> {
    await this.#send({
      operation: "HeadBucket",
      bucket,
      notFound: "NoSuchBucket",
    }, (c, o) => c.send(new HeadBucketCommand({ Bucket: bucket }), o));
  }

  async deleteBucket(bucket: string): Promise<void> {
    await this.#send({
      operation: "DeleteBucket",
      bucket,
      notFound: "NoSuchBucket",
    }, (c, o) => c.send(new DeleteBucketCommand({ Bucket: bucket }), o));
  }

  async putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void> {
    const TagSet = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    await this.#send(
      { operation: "PutBucketTagging", bucket, notFound: "NoSuchBucket" },
      (c, o) => c.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet } }), o),
    );
  }

  async getBucketTagging(bucket: string): Promise<Record<string, string>> {
    const out = await this.#send(
      { operation: "GetBucketTagging", bucket, notFound: "NoSuchBucket" },
      (c, o) =>
        c.send(new GetBucketTaggingCommand({ Bucket: bucket }), o).catch((err) => {
          // S3 answers "no tags" with an error rather than an empty set.
          if ((err as { name?: string })?.name === "NoSuchTagSet") return { TagSet: [] };
          throw err;
        }),
    );
    const tags: Record<string, string> = {};
    for (const t of out.TagSet ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? "";
    return tags;
  }

  async headObject(
    bucket: string,
    key: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ObjectInfo | null> {
    try {
      const out = await this.#send({
        operation: "HeadObject",
        bucket,
        key,
        notFound: "NoSuchKey",
        signal: opts.signal,
      }, (c, o) => c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), o));
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: out.ETag ?? "",
        lastModified: out.LastModified ?? new Date(0),
        // S3 sends the header only for classes other than STANDARD; list always names it.
        storageClass: out.StorageClass ?? "STANDARD",
        ...(out.Metadata && Object.keys(out.Metadata).length > 0 ? { metadata: out.Metadata } : {}),
      };
    } catch (err) {
      if (err instanceof S3Error && err.code === "NoSuchKey") return null;
      throw err;
    }
  }

  async getObject(bucket: string, key: string, opts: GetOptions = {}): Promise<GetResult> {
    const ctx: ErrorContext = {
      operation: "GetObject",
      bucket,
      key,
      notFound: "NoSuchKey",
      signal: opts.signal,
    };
    const range = opts.range;
    if (range) {
      if (
        !Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) ||
        range.start < 0 || range.end < range.start
      ) {
        throw new RangeError(`Invalid range [${range.start}, ${range.end}) for GetObject`);
      }
      // HTTP cannot express an empty range; a conditional HEAD gives the same answer.
      if (range.end === range.start) return await this.#emptyRead(bucket, key, opts, ctx);
    }
    const out = await this.#send(ctx, (c, o) =>
      c.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
          ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}),
        }),
        o,
      ));
    let body: Uint8Array;
    try {
      body = await readBody(out.Body, out.ContentLength, opts.signal, opts.into);
    } catch (err) {
      throw toS3Error(err, ctx);
    }
    const objectSize = parseContentRangeTotal(out.ContentRange) ?? body.byteLength;
    return {
      body,
      etag: out.ETag ?? "",
      objectSize,
      lastModified: out.LastModified ?? new Date(0),
    };
  }

  async #emptyRead(
    bucket: string,
    key: string,
    opts: GetOptions,
    ctx: ErrorContext,
  ): Promise<GetResult> {
    const out = await this.#send(ctx, (c, o) =>
      c.send(
        new HeadObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}),
        }),
        o,
      ));
    return {
      body: new Uint8Array(0),
      etag: out.ETag ?? "",
      objectSize: out.ContentLength ?? 0,
      lastModified: out.LastModified ?? new Date(0),
    };
  }

  async putObject(
    bucket: string,
    key: string,
    body: Uint8Array,
    opts: PutOptions = {},
  ): Promise<{ etag: string }> {
    const out = await this.#send(
      { operation: "PutObject", bucket, key, signal: opts.signal },
      (c, o) =>
        c.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.byteLength,
            ...writeOptions(opts),
            ...(opts.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
          }),
          o,
        ),
    );
    return { etag: out.ETag ?? "" };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.#send({
      operation: "DeleteObject",
      bucket,
      key,
    }, (c, o) => c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), o));
  }

  async listObjects(bucket: string, opts: ListOptions = {}): Promise<ListPage> {
    const out = await this.#send({
      operation: "ListObjectsV2",
      bucket,
      notFound: "NoSuchBucket",
      signal: opts.signal,
    }, (c, o) =>
      c.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          // URL encoding keeps keys with characters XML 1.0 cannot carry intact.
          EncodingType: "url",
          ...(opts.prefix ? { Prefix: opts.prefix } : {}),
          ...(opts.delimiter ? { Delimiter: opts.delimiter } : {}),
          ...(opts.continuationToken ? { ContinuationToken: opts.continuationToken } : {}),
          ...(opts.startAfter ? { StartAfter: opts.startAfter } : {}),
          ...(opts.maxKeys !== undefined ? { MaxKeys: opts.maxKeys } : {}),
        }),
        o,
      ));
    const encoded = out.EncodingType === "url";
    const decode = (s: string) => (encoded ? decodeUrlEncodedKey(s) : s);
    const objects: ObjectInfo[] = (out.Contents ?? []).map((o) => ({
      key: decode(o.Key ?? ""),
      size: o.Size ?? 0,
      etag: o.ETag ?? "",
      lastModified: o.LastModified ?? new Date(0),
      storageClass: o.StorageClass ?? "STANDARD",
    }));
    const commonPrefixes = (out.CommonPrefixes ?? []).map((p) => decode(p.Prefix ?? ""));
    const page: ListPage = { objects, commonPrefixes };
    if (out.IsTruncated && out.NextContinuationToken) {
      page.nextContinuationToken = out.NextContinuationToken;
    }
    return page;
  }

  async createMultipartUpload(bucket: string, key: string, opts: PutOptions = {}): Promise<string> {
    const out = await this.#send(
      { operation: "CreateMultipartUpload", bucket, key, signal: opts.signal },
      (c, o) =>
        c.send(
          new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...writeOptions(opts) }),
          o,
        ),
    );
    if (!out.UploadId) {
      throw new S3Error(
        "Other",
        `CreateMultipartUpload failed for ${quoteKey(bucket, key)}: no upload ID`,
      );
    }
    return out.UploadId;
  }

  async uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    opts: { signal?: AbortSignal } = {},
  ): Promise<string> {
    const out = await this.#send({
      operation: "UploadPart",
      bucket,
      key,
      notFound: "NoSuchUpload",
      signal: opts.signal,
    }, (c, o) =>
      c.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.byteLength,
        }),
        o,
      ));
    return out.ETag ?? "";
  }

  async completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    opts: { ifNoneMatch?: boolean } = {},
  ): Promise<{ etag: string }> {
    const out = await this.#send({
      operation: "CompleteMultipartUpload",
      bucket,
      key,
      notFound: "NoSuchUpload",
    }, (c, o) =>
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
          },
          ...(opts.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
        }),
        o,
      ));
    return { etag: out.ETag ?? "" };
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.#send(
      { operation: "AbortMultipartUpload", bucket, key, notFound: "NoSuchUpload" },
      (c, o) =>
        c.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }),
          o,
        ),
    );
  }

  /** Runs one SDK call with the caller's signal, mapping every failure through `toS3Error()`. */
  async #send<Out>(
    ctx: ErrorContext,
    call: (client: S3Client, options: { abortSignal?: AbortSignal }) => Promise<Out>,
  ): Promise<Out> {
    if (ctx.signal?.aborted) throw toS3Error(ctx.signal.reason, ctx);
    try {
      // fetch's URL parser would resolve "." and ".." in the key's path.
      const client = ctx.key !== undefined && hasDotSegment(ctx.key) ? this.#node() : this.#client;
      return await call(client, ctx.signal ? { abortSignal: ctx.signal } : {});
    } catch (err) {
      const mapped = toS3Error(err, ctx);
      // Rejected credentials may have been rotated: fetch fresh ones next time.
      if (mapped.code === "AccessDenied") this.#credentialsCache?.invalidate();
      throw mapped;
    }
  }
}

/** Builds an `AwsObjectClient` for `config`. */
export function createAwsObjectClient(
  config: S3ClientConfig,
  options?: AwsObjectClientOptions,
): AwsObjectClient {
  return new AwsObjectClient(config, options);
}

/** Caches `credentialsProvider` results briefly and lets a rejection drop them. */
class RotatingCredentials {
  readonly #provider: () => Promise<Credentials>;
  readonly #ttlMs: number;
  #current?: { value: Credentials; fetchedAt: number };
  #pending?: Promise<Credentials>;
  #generation = 0;

  constructor(provider: () => Promise<Credentials>, ttlMs: number) {
    this.#provider = provider;
    this.#ttlMs = ttlMs;
  }

  async get(): Promise<Credentials & { expiration: Date }> {
    const now = Date.now();
    let value: Credentials;
    if (this.#current && now - this.#current.fetchedAt < this.#ttlMs) {
      value = this.#current.value;
    } else {
      value = await this.#fetch();
    }
    // An expiration inside the SDK's refresh window makes it ask us again on every request,
    // leaving the caching decision here.
    return { ...value, expiration: new Date(Date.now() + 1_000) };
  }

  invalidate(): void {
    this.#current = undefined;
    this.#generation++;
  }

  #fetch(): Promise<Credentials> {
    if (!this.#pending) {
      const generation = this.#generation;
      this.#pending = (async () => {
        try {
          const value = await this.#provider();
          registerCredentialSecrets(value);
          if (generation === this.#generation) {
            this.#current = { value, fetchedAt: Date.now() };
          }
          return value;
        } finally {
          this.#pending = undefined;
        }
      })();
    }
    return this.#pending;
  }
}

function registerCredentialSecrets(c: Credentials): void {
  registerSecret(c.secretAccessKey);
  registerSecret(c.sessionToken);
}

function readCaBundle(path: string): string {
  let pem: string;
  try {
    pem = Deno.readTextFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read CA bundle "${path}": ${(err as Error).message}`, { cause: err });
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`Cannot use CA bundle "${path}": no PEM certificate found`);
  }
  return pem;
}

function endpointPort(endpointUrl: string | undefined): number {
  if (!endpointUrl) return 443;
  try {
    const url = new URL(endpointUrl);
    return url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  } catch {
    throw new Error(`Invalid S3 endpoint URL "${endpointUrl}"`);
  }
}

function writeOptions(opts: PutOptions) {
  return {
    ...(opts.storageClass ? { StorageClass: opts.storageClass as StorageClass } : {}),
    ...(opts.sse ? { ServerSideEncryption: opts.sse as ServerSideEncryption } : {}),
    ...(opts.sseKmsKeyId ? { SSEKMSKeyId: opts.sseKmsKeyId } : {}),
    ...(opts.metadata ? { Metadata: opts.metadata } : {}),
  };
}

/**
 * Decodes a key from a ListObjectsV2 response with `encoding-type=url`.
 * S3 encodes form-style (a space may arrive as "+"), so "+" is decoded too.
 */
export function decodeUrlEncodedKey(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, " "));
}

/** The total size from "bytes 0-99/1234", or undefined when absent or unknown ("*"). */
export function parseContentRangeTotal(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const m = /\/(\d+)\s*$/.exec(header);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads a response body into one buffer. With a known length the buffer is
 * allocated once (or is `into`, see `GetOptions.into`) and filled in place;
 * otherwise chunks are joined once at the end.
 */
export async function readBody(
  body: unknown,
  contentLength: number | undefined,
  signal?: AbortSignal,
  into?: ArrayBuffer,
): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const stream = body as AsyncIterable<Uint8Array>;
  if (typeof stream[Symbol.asyncIterator] !== "function") {
    throw new TypeError("Cannot read response body: not an async iterable stream");
  }
  if (contentLength !== undefined && Number.isSafeInteger(contentLength) && contentLength >= 0) {
    const memory = into && into.byteLength >= bodyBufferSize(contentLength) ? into : undefined;
    const byob = byobReader(body);
    if (byob) return await readInto(byob, contentLength, signal, memory);
    const out = new Uint8Array(
      memory?.transfer() ?? new ArrayBuffer(contentLength),
      0,
      contentLength,
    );
    let offset = 0;
    for await (const chunk of stream) {
      if (signal?.aborted) throw signal.reason ?? abortError();
      if (offset + chunk.byteLength > contentLength) throw tooLong(contentLength);
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    if (offset !== contentLength) throw tooShort(offset, contentLength);
    return out;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    if (signal?.aborted) throw signal.reason ?? abortError();
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** A BYOB reader of `body` if it is a byte stream (the fetch handler's bodies are). */
function byobReader(body: unknown): ReadableStreamBYOBReader | undefined {
  if (!(body instanceof ReadableStream)) return undefined;
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

/**
 * Fills one buffer of `length` bytes straight from the stream: the bytes are
 * copied once, from the socket, and no chunk is allocated per read. One byte
 * of room past the end catches a body longer than announced. `memory`, when
 * given, has that room already and is used instead of a fresh buffer.
 */
async function readInto(
  reader: ReadableStreamBYOBReader,
  length: number,
  signal?: AbortSignal,
  memory?: ArrayBuffer,
): Promise<Uint8Array> {
  let buffer = memory ?? new ArrayBuffer(bodyBufferSize(length));
  let offset = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? abortError();
      const { done, value } = await reader.read(
        new Uint8Array(buffer, offset, buffer.byteLength - offset),
      );
      if (value) buffer = value.buffer as ArrayBuffer;
      if (done) break;
      offset += value.byteLength;
      if (offset > length) throw tooLong(length);
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
  if (offset !== length) throw tooShort(offset, length);
  return new Uint8Array(buffer, 0, length);
}

function tooLong(length: number): BodyLengthError {
  return new BodyLengthError(`Response body longer than Content-Length ${length}`);
}

function tooShort(got: number, length: number): BodyLengthError {
  return new BodyLengthError(`Response body ended after ${got} of ${length} bytes`);
}

/** A body that does not match its Content-Length: the connection broke mid-transfer. */
class BodyLengthError extends Error {
  override readonly name = "BodyLengthError";
}

function abortError(): Error {
  return new DOMException("The operation was aborted", "AbortError");
}

// ---------------------------------------------------------------------------
// Error mapping: the single translation from SDK/transport failures to S3Error.

/** S3 error codes (the XML `<Code>`, surfaced by the SDK as `name`) and what they mean here. */
const SERVICE_CODES: Record<string, S3ErrorCode> = {
  NoSuchKey: "NoSuchKey",
  NoSuchBucket: "NoSuchBucket",
  NoSuchUpload: "NoSuchUpload",
  PreconditionFailed: "PreconditionFailed",
  // A concurrent conditional write won the race: the condition no longer holds.
  ConditionalRequestConflict: "PreconditionFailed",
  InvalidRange: "InvalidRange",
  BucketNotEmpty: "BucketNotEmpty",
  BucketAlreadyOwnedByYou: "BucketAlreadyOwnedByYou",
  BucketAlreadyExists: "BucketAlreadyExists",
  InvalidBucketName: "InvalidBucketName",
  AccessDenied: "AccessDenied",
  InvalidAccessKeyId: "AccessDenied",
  SignatureDoesNotMatch: "AccessDenied",
  ExpiredToken: "AccessDenied",
  InvalidToken: "AccessDenied",
  TokenRefreshRequired: "AccessDenied",
  AllAccessDisabled: "AccessDenied",
  AccountProblem: "AccessDenied",
  RequestTimeTooSkewed: "AccessDenied",
  EntityTooSmall: "EntityTooSmall",
  InvalidPart: "InvalidPart",
  InvalidPartOrder: "InvalidPart",
  SlowDown: "Throttled",
  SlowDownRead: "Throttled",
  SlowDownWrite: "Throttled",
  Throttling: "Throttled",
  ThrottlingException: "Throttled",
  RequestLimitExceeded: "Throttled",
  TooManyRequests: "Throttled",
  TooManyRequestsException: "Throttled",
  InternalError: "ServerError",
  ServiceUnavailable: "Throttled",
  RequestTimeout: "NetworkError",
};

/** Transport error codes (Node `err.code`) that mean the network, DNS or TLS failed. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NONAME",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "EPROTO",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_BLOCKED_PORT",
  "ENETWORK",
]);

/** Error names (Node SDK, Deno built-in errors, DOM) that mean a transport failure. */
const NETWORK_NAMES = new Set([
  "TimeoutError",
  "ConnectionRefused",
  "ConnectionReset",
  "ConnectionAborted",
  "NotConnected",
  "AddrNotAvailable",
  "BrokenPipe",
  "TimedOut",
  "UnexpectedEof",
  "NetworkUnreachable",
  "HostUnreachable",
  "BodyLengthError",
]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  cause?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $response?: { statusCode?: number };
}

/**
 * Maps any failure of an S3 call to an `S3Error`.
 *
 * The message names the operation, the bucket/key and the codes involved,
 * and nothing the SDK or the server wrote: those texts can carry request
 * details (signatures, canonical requests, access key IDs).
 */
export function toS3Error(err: unknown, ctx: ErrorContext): S3Error {
  if (err instanceof S3Error) return err;
  const target = ctx.bucket === undefined ? "" : ` for ${quoteKey(ctx.bucket, ctx.key)}`;
  const make = (code: S3ErrorCode, detail: string, status?: number) =>
    new S3Error(code, `${ctx.operation} failed${target}: ${detail}`, status);

  const e: ErrorShape = typeof err === "object" && err !== null ? (err as ErrorShape) : {};
  const name = typeof e.name === "string" ? e.name : "";
  if (name === "AbortError" || (ctx.signal?.aborted && !isServiceError(e))) {
    return make("Aborted", "Aborted");
  }

  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  if (isServiceError(e) && status !== undefined) {
    const serviceCode = typeof e.Code === "string" ? e.Code : name;
    const requestId = e.$metadata?.requestId;
    const detail = (code: S3ErrorCode) => {
      const parts = [`HTTP ${status}`];
      if (serviceCode && serviceCode !== code && serviceCode !== "Unknown") {
        parts.push(`S3 code ${safeToken(serviceCode)}`);
      }
      if (requestId) parts.push(`request ID ${safeToken(requestId)}`);
      return `${code} (${parts.join(", ")})`;
    };
    const code = SERVICE_CODES[serviceCode] ?? codeForStatus(status, ctx);
    return make(code, detail(code), status);
  }

  const netCode = networkCode(err);
  if (netCode) return make("NetworkError", `NetworkError (${netCode})`);
  if (ctx.signal?.aborted) return make("Aborted", "Aborted");
  return make("Other", `Other (${safeToken(name || typeof err)})`);
}

function isServiceError(e: ErrorShape): boolean {
  return e.$metadata !== undefined && (e.$fault === "client" || e.$fault === "server" ||
    e.$metadata.httpStatusCode !== undefined);
}

function codeForStatus(status: number, ctx: ErrorContext): S3ErrorCode {
  if (status === 404) return ctx.notFound ?? "Other";
  if (status === 412) return "PreconditionFailed";
  if (status === 416) return "InvalidRange";
  if (status === 401 || status === 403) return "AccessDenied";
  if (status === 429 || status === 503) return "Throttled";
  if (status >= 500) return "ServerError";
  return "Other";
}

/** The transport failure code found on `err` or its causes, if it is one. */
function networkCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== "object" || err === null) return undefined;
  const e = err as ErrorShape;
  const code = typeof e.code === "string" ? e.code : undefined;
  const name = typeof e.name === "string" ? e.name : "";
  if (code && (NETWORK_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("CERT_"))) {
    return code;
  }
  if (NETWORK_NAMES.has(name)) return code ?? name;
  // Deno reports TLS and malformed-stream failures as InvalidData.
  if (name === "InvalidData") return "TLS or protocol error";
  return networkCode(e.cause, depth + 1);
}

/** Keeps identifier-like text only, so nothing unexpected reaches a message. */
function safeToken(s: string): string {
  return s.replace(/[^A-Za-z0-9_.:-]/g, "").slice(0, 64) || "unknown";
}

function quoteKey(bucket: string, key?: string): string {
  return key === undefined ? `"${bucket}"` : `"${bucket}/${key}"`;
}
