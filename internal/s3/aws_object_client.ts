/**
 * `AwsObjectClient`: the production `ObjectClient`, on `@aws-sdk/client-s3`.
 *
 * Each method turns one `ObjectClient` call into one SDK command and its
 * answer back into plain values. Around it:
 *
 * - **Transport** (`sdk_clients.ts`): the SDK clients run on our
 *   `FetchHttpHandler` over Deno's `fetch`, with a `node:http` client for
 *   the keys and ports `fetch` cannot address.
 * - **Credentials** (`credential_provider.ts`): static keys, the standard AWS
 *   chain, or a `credentialsProvider` callback whose results are dropped as
 *   soon as S3 rejects them.
 * - **Bodies** (`body_reader.ts`): `getObject` reads the response into one
 *   buffer sized from Content-Length, copying the socket's bytes once. A
 *   body that breaks or stalls (the handler's idle timeout) after the
 *   response head is fetched again, up to `maxAttempts` in all.
 * - **Errors** (this file): every failure leaves through `toS3Error()`, the
 *   one place that maps S3 error codes and HTTP statuses to `S3ErrorCode`s
 *   (and, through `network_errors.ts`, transport failures to NetworkError).
 *   Its messages are built from the operation, bucket, key and codes only:
 *   SDK messages can echo request details, so they are never copied and the
 *   SDK error is not kept as `cause`.
 *
 * Requires `--allow-net`, `--allow-env` and `--allow-read` (AWS profile files,
 * CA bundle).
 *
 * @module
 */

import * as sdk from "@aws-sdk/client-s3";
import {
  s3ReceivedBytes,
  s3RequestDuration,
  s3Requests,
  s3Retries,
  s3SentBytes,
} from "../metrics/mod.ts";
import { readBody } from "./body_reader.ts";
import { networkCode } from "./network_errors.ts";
import { type ClientCredentials, clientCredentials } from "./credential_provider.ts";
import {
  type BucketLocation,
  type CompletedPart,
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
import { SdkClients, type Transport } from "./sdk_clients.ts";

export interface AwsObjectClientOptions {
  /** Reuse window for `credentialsProvider` results; 0 calls the provider for every request. */
  credentialsCacheMs?: number;
  /** Chosen by the tests, to run every operation over `node:http` too. */
  transport?: Transport;
}

/**
 * What a failed call was doing, for `toS3Error()` messages and 404 handling.
 * Exported, with `toS3Error()`, for the unit tests of the error table: most
 * of its rows (throttling, expired tokens, TLS failures) cannot be provoked
 * on a test server.
 */
export interface ErrorContext {
  operation: string;
  bucket?: string;
  key?: string;
  /** The code a bare 404 (no error body, as on HEAD) means for this operation. */
  notFound?: S3ErrorCode;
  signal?: AbortSignal;
}

/** Any command `S3Client.send()` takes, with its input and output types. */
type S3Command<In extends sdk.ServiceInputTypes, Out extends sdk.ServiceOutputTypes> = Parameters<
  typeof sdk.S3Client.prototype.send<In, Out>
>[0];

/** The SDK's own default for `maxAttempts` (its "standard" retry mode). */
const SDK_DEFAULT_ATTEMPTS = 3;

export class AwsObjectClient implements ObjectClient {
  readonly #credentials: ClientCredentials;
  readonly #clients: SdkClients;
  readonly #bodyAttempts: number;

  constructor(config: S3ClientConfig, options: AwsObjectClientOptions = {}) {
    // The SDK's retries end at the response head; a body cut or stalled
    // after it is this client's to retry, as often as the SDK would.
    this.#bodyAttempts = Math.max(1, config.maxAttempts ?? SDK_DEFAULT_ATTEMPTS);
    this.#credentials = clientCredentials(config, options.credentialsCacheMs);
    this.#clients = new SdkClients(config, this.#credentials.sdk, options.transport);
  }

  /** Closes pooled connections. The client must not be used afterwards. */
  close(): void {
    this.#clients.close();
  }

  async createBucket(bucket: string, opts: BucketLocation = {}): Promise<void> {
    const input: sdk.CreateBucketCommandInput = { Bucket: bucket };
    // us-east-1 is the one region S3 refuses as an explicit location constraint.
    if (opts.region && opts.region !== "us-east-1") {
      input.CreateBucketConfiguration = {
        LocationConstraint: opts.region as NonNullable<
          sdk.CreateBucketCommandInput["CreateBucketConfiguration"]
        >["LocationConstraint"],
      };
    }
    await this.#send({ operation: "CreateBucket", bucket }, new sdk.CreateBucketCommand(input));
  }

  async headBucket(bucket: string): Promise<void> {
    const ctx: ErrorContext = { operation: "HeadBucket", bucket, notFound: "NoSuchBucket" };
    await this.#send(ctx, new sdk.HeadBucketCommand({ Bucket: bucket }));
  }

  async deleteBucket(bucket: string): Promise<void> {
    const ctx: ErrorContext = { operation: "DeleteBucket", bucket, notFound: "NoSuchBucket" };
    await this.#send(ctx, new sdk.DeleteBucketCommand({ Bucket: bucket }));
  }

  async putBucketTagging(bucket: string, tags: Record<string, string>): Promise<void> {
    const ctx: ErrorContext = { operation: "PutBucketTagging", bucket, notFound: "NoSuchBucket" };
    const TagSet = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    await this.#send(ctx, new sdk.PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet } }));
  }

  async getBucketTagging(bucket: string): Promise<Record<string, string>> {
    const ctx: ErrorContext = { operation: "GetBucketTagging", bucket, notFound: "NoSuchBucket" };
    const out = await this.#send(
      ctx,
      new sdk.GetBucketTaggingCommand({ Bucket: bucket }),
      // S3 answers "no tags" with an error rather than an empty set.
      (err) =>
        (err as { name?: string })?.name === "NoSuchTagSet"
          ? { $metadata: {}, TagSet: [] }
          : undefined,
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
    const ctx: ErrorContext = {
      operation: "HeadObject",
      bucket,
      key,
      notFound: "NoSuchKey",
      signal: opts.signal,
    };
    try {
      const out = await this.#send(ctx, new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
      const info = objectInfo(key, out.ContentLength, out);
      // Only HEAD returns user metadata (LIST does not): the prefix-volume marker's record.
      const meta = out.Metadata;
      return meta && Object.keys(meta).length > 0 ? { ...info, metadata: meta } : info;
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
    const ifMatch = opts.ifMatch ? { IfMatch: opts.ifMatch } : {};
    if (range) {
      if (
        !Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) ||
        range.start < 0 || range.end < range.start
      ) {
        throw new RangeError(`Invalid range [${range.start}, ${range.end}) for GetObject`);
      }
      if (range.end === range.start) {
        // HTTP cannot express an empty range; a conditional HEAD gives the same answer.
        const head = await this.#send(
          ctx,
          new sdk.HeadObjectCommand({ Bucket: bucket, Key: key, ...ifMatch }),
        );
        return {
          body: new Uint8Array(0),
          etag: head.ETag ?? "",
          objectSize: head.ContentLength ?? 0,
          lastModified: head.LastModified ?? new Date(0),
        };
      }
    }
    const input: sdk.GetObjectCommandInput = {
      Bucket: bucket,
      Key: key,
      ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
      ...ifMatch,
    };
    let out: sdk.GetObjectCommandOutput;
    let body: Uint8Array;
    for (let attempt = 1;; attempt++) {
      out = await this.#send(ctx, new sdk.GetObjectCommand(input));
      try {
        body = await readBody(out.Body, out.ContentLength, opts.signal, opts.into);
        break;
      } catch (err) {
        const mapped = toS3Error(err, ctx);
        // Each answer is one version's bytes, whole or failed: a retry
        // cannot mix versions, and the caller's ifMatch still holds.
        if (mapped.code !== "NetworkError" || opts.signal?.aborted) throw mapped;
        if (attempt >= this.#bodyAttempts) throw mapped;
        s3Retries.inc({ operation: "GetObject" });
      }
    }
    s3ReceivedBytes.inc(body.byteLength);
    return {
      body,
      etag: out.ETag ?? "",
      objectSize: parseContentRangeTotal(out.ContentRange) ?? body.byteLength,
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
      new sdk.PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.byteLength,
        ...writeOptions(opts),
        ...(opts.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
      }),
    );
    s3SentBytes.inc(body.byteLength);
    return { etag: out.ETag ?? "" };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    const ctx: ErrorContext = { operation: "DeleteObject", bucket, key };
    await this.#send(ctx, new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  async listObjects(bucket: string, opts: ListOptions = {}): Promise<ListPage> {
    const out = await this.#send(
      { operation: "ListObjectsV2", bucket, notFound: "NoSuchBucket", signal: opts.signal },
      new sdk.ListObjectsV2Command({
        Bucket: bucket,
        // URL encoding keeps keys with characters XML 1.0 cannot carry intact.
        EncodingType: "url",
        ...(opts.prefix ? { Prefix: opts.prefix } : {}),
        ...(opts.delimiter ? { Delimiter: opts.delimiter } : {}),
        ...(opts.continuationToken ? { ContinuationToken: opts.continuationToken } : {}),
        ...(opts.startAfter ? { StartAfter: opts.startAfter } : {}),
        ...(opts.maxKeys !== undefined ? { MaxKeys: opts.maxKeys } : {}),
      }),
    );
    const encoded = out.EncodingType === "url";
    const decode = (s: string) => (encoded ? decodeUrlEncodedKey(s) : s);
    const objects = (out.Contents ?? []).map((o) => objectInfo(decode(o.Key ?? ""), o.Size, o));
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
      new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...writeOptions(opts) }),
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
    const out = await this.#send(
      { operation: "UploadPart", bucket, key, notFound: "NoSuchUpload", signal: opts.signal },
      new sdk.UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.byteLength,
      }),
    );
    s3SentBytes.inc(body.byteLength);
    return out.ETag ?? "";
  }

  async completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    opts: { ifNoneMatch?: boolean } = {},
  ): Promise<{ etag: string }> {
    const out = await this.#send(
      { operation: "CompleteMultipartUpload", bucket, key, notFound: "NoSuchUpload" },
      new sdk.CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: {
          Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
        },
        ...(opts.ifNoneMatch ? { IfNoneMatch: "*" } : {}),
      }),
    );
    return { etag: out.ETag ?? "" };
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.#send(
      { operation: "AbortMultipartUpload", bucket, key, notFound: "NoSuchUpload" },
      new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }),
    );
  }

  /**
   * Sends one command with the caller's signal. Every failure leaves through
   * `toS3Error()`, but for one that `answer` turns into a result.
   */
  async #send<In extends sdk.ServiceInputTypes, Out extends sdk.ServiceOutputTypes>(
    ctx: ErrorContext,
    command: S3Command<In, Out>,
    answer?: (err: unknown) => NoInfer<Out> | undefined,
  ): Promise<Out> {
    if (ctx.signal?.aborted) throw toS3Error(ctx.signal.reason, ctx);
    const started = performance.now();
    try {
      const options = ctx.signal ? { abortSignal: ctx.signal } : {};
      const out = await this.#clients.for(ctx.key).send(command, options);
      countRequest(ctx.operation, "ok", started, out.$metadata?.attempts);
      return out;
    } catch (err) {
      const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts;
      const answered = answer?.(err);
      if (answered !== undefined) {
        countRequest(ctx.operation, "ok", started, attempts);
        return answered;
      }
      const mapped = toS3Error(err, ctx);
      countRequest(ctx.operation, mapped.code, started, attempts);
      // Rejected credentials may have been rotated: fetch fresh ones next time.
      if (mapped.code === "AccessDenied") this.#credentials.invalidate();
      throw mapped;
    }
  }
}

/** The S3 metrics of one request (its retries included). */
function countRequest(operation: string, outcome: string, started: number, attempts?: number) {
  s3Requests.inc({ operation, outcome });
  s3RequestDuration.observe({ operation }, (performance.now() - started) / 1000);
  if (attempts !== undefined && attempts > 1) s3Retries.inc({ operation }, attempts - 1);
}

/** An `ObjectInfo` from the fields HEAD and LIST answers share. */
function objectInfo(
  key: string,
  size: number | undefined,
  o: { ETag?: string; LastModified?: Date; StorageClass?: string },
): ObjectInfo {
  return {
    key,
    size: size ?? 0,
    etag: o.ETag ?? "",
    lastModified: o.LastModified ?? new Date(0),
    // HEAD sends the header only for classes other than STANDARD; LIST always names it.
    storageClass: o.StorageClass ?? "STANDARD",
  };
}

function writeOptions(opts: PutOptions) {
  return {
    ...(opts.storageClass ? { StorageClass: opts.storageClass as sdk.StorageClass } : {}),
    ...(opts.sse ? { ServerSideEncryption: opts.sse as sdk.ServerSideEncryption } : {}),
    ...(opts.sseKmsKeyId ? { SSEKMSKeyId: opts.sseKmsKeyId } : {}),
    ...(opts.metadata ? { Metadata: opts.metadata } : {}),
  };
}

/**
 * Decodes a key from a ListObjectsV2 response with `encoding-type=url`.
 * S3 encodes form-style (a space may arrive as "+"), so "+" is decoded too.
 * Exported for its unit test: MinIO sends spaces as "%20", never "+".
 */
export function decodeUrlEncodedKey(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, " "));
}

/**
 * The total size from "bytes 0-99/1234", or undefined when absent or unknown
 * ("*"). Exported for its unit test: S3 servers always know the total.
 */
export function parseContentRangeTotal(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const m = /\/(\d+)\s*$/.exec(header);
  return m ? Number(m[1]) : undefined;
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

interface ErrorShape {
  name?: unknown;
  Code?: unknown;
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

/** Keeps identifier-like text only, so nothing unexpected reaches a message. */
function safeToken(s: string): string {
  return s.replace(/[^A-Za-z0-9_.:-]/g, "").slice(0, 64) || "unknown";
}

function quoteKey(bucket: string, key?: string): string {
  return key === undefined ? `"${bucket}"` : `"${bucket}/${key}"`;
}
